import { PorchlightError } from '@porchlight/shared/errors'
import { hashPassword } from '@porchlight/shared/pki/runtime'

export interface HashPasswordIo {
  readStdin(): Promise<string>
  print(line: string): void
  /** Asks on the terminal without echo; resolves with what was typed. */
  prompt(question: string): Promise<string>
}

const MAX_PASSWORD_CHARS = 1024

/**
 * `porchlight hash-password [--password-stdin]`: prints an scrypt hash for agent.yaml
 * `access.basic.password_hash`. The password itself is never printed or logged.
 */
export async function runHashPassword(opts: { passwordStdin: boolean }, io: HashPasswordIo): Promise<string> {
  let password: string
  if (opts.passwordStdin) {
    // Exactly one trailing newline is the terminator `echo` adds, not part of the password.
    password = (await io.readStdin()).replace(/\r?\n$/, '')
  } else {
    password = await io.prompt('Password: ')
    const again = await io.prompt('Repeat password: ')
    if (again !== password) throw new PorchlightError('PL_ERR_USAGE', ['the passwords do not match'])
  }
  if (password === '') throw new PorchlightError('PL_ERR_USAGE', ['the password is empty'])
  if (password.length > MAX_PASSWORD_CHARS) throw new PorchlightError('PL_ERR_USAGE', [`the password is longer than ${MAX_PASSWORD_CHARS} characters`])
  const hash = await hashPassword(password)
  io.print(hash)
  return hash
}
