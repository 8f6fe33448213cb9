import { PorchlightError } from '@porchlight/shared/errors'

/** All of stdin as text (`--password-stdin`), bounded so a stray pipe cannot eat memory. */
export async function readStdin(maxBytes = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > maxBytes) throw new PorchlightError('PL_ERR_USAGE', ['stdin is too large for a password'])
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Asks a question on the terminal and reads one line without echoing it (passwords). Without a
 * terminal on stdin this is a usage error: use --password-stdin.
 */
export function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin
  if (stdin.isTTY !== true) {
    return Promise.reject(new PorchlightError('PL_ERR_USAGE', ['stdin is not a terminal; use --password-stdin']))
  }
  process.stderr.write(question)
  return new Promise((resolve, reject) => {
    let typed = ''
    stdin.setRawMode(true)
    stdin.resume()
    stdin.setEncoding('utf8')
    const finish = (err?: Error): void => {
      stdin.off('data', onData)
      stdin.setRawMode(false)
      stdin.pause()
      process.stderr.write('\n')
      if (err) reject(err)
      else resolve(typed)
    }
    const onData = (text: string): void => {
      for (const ch of text) {
        if (ch === '\r' || ch === '\n') return finish()
        if (ch === '\u0003') return finish(new PorchlightError('PL_ERR_USAGE', ['cancelled']))
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1)
        else if (ch >= ' ') typed += ch
      }
    }
    stdin.on('data', onData)
  })
}
