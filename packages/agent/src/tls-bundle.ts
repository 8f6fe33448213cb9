import { readFile } from 'node:fs/promises'
import { PorchlightError } from '@porchlight/shared/errors'
import { parseBundle, splitPemBlocks, type ClientBundle } from '@porchlight/shared/pki/runtime'

/**
 * The files the agent reads when it connects (not at config load): the `cert:` bundle as
 * `porchlight-relay cert issue` writes it (cert, key, CA) and the optional extra `ca:` file.
 * Any problem is PL_ERR_TLS_FILE naming the file (not retryable: the agent exits 1).
 */
export async function readCertBundle(file: string): Promise<ClientBundle> {
  return parseBundle(await readText(file), file)
}

export async function readCaFile(file: string): Promise<string[]> {
  const blocks = splitPemBlocks(await readText(file)).filter((b) => b.label === 'CERTIFICATE').map((b) => b.pem)
  if (blocks.length === 0) throw new PorchlightError('PL_ERR_TLS_FILE', [file, 'no CERTIFICATE block'])
  return blocks
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new PorchlightError('PL_ERR_TLS_FILE', [file, (err as NodeJS.ErrnoException).code ?? String(err)], { cause: err })
  }
}
