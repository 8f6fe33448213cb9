import { newToken, sha256Hex } from '@porchlight/shared/secrets'

/** Prints a fresh token (give it to the agent) and the hash line for relay.yaml (only the hash is stored). */
export function runTokenNew(opts: { name: string }, print: (line: string) => void): void {
  const token = newToken()
  print(`token for agent ${opts.name} (put it in the agent's config; it is shown only once):`)
  print(`  ${token}`)
  print('')
  print('relay.yaml:')
  print('agents:')
  print(`  ${opts.name}:`)
  print(`    token_sha256: "${sha256Hex(token)}"`)
}
