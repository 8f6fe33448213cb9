import { readFile } from 'node:fs/promises'
import { PorchlightError } from '@porchlight/shared/errors'

/** A client certificate bundle as `porchlight-relay cert issue` writes it: cert, key, CA cert. */
export interface CertBundle {
  cert: string
  key: string
  /** Every CERTIFICATE block after the first (the relay's CA, maybe intermediates). */
  ca: string[]
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n[\s\S]*?\r?\n-----END \1-----/g

/** Splits PEM text into its blocks; throws a plain Error describing what is missing. */
export function splitBundle(pem: string): CertBundle {
  let cert: string | null = null
  let key: string | null = null
  const ca: string[] = []
  for (const match of pem.matchAll(PEM_BLOCK)) {
    const label = match[1]!
    const block = `${match[0]}\n`
    if (label === 'CERTIFICATE') {
      if (cert === null) cert = block
      else ca.push(block)
    } else if (label.endsWith('PRIVATE KEY')) {
      if (key !== null) throw new Error('more than one private key')
      key = block
    }
  }
  if (cert === null) throw new Error('no CERTIFICATE block')
  if (key === null) throw new Error('no PRIVATE KEY block')
  return { cert, key, ca }
}

/** Reads and splits a bundle file; any problem is PL_ERR_TLS_FILE naming the file. */
export async function readCertBundle(file: string): Promise<CertBundle> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new PorchlightError('PL_ERR_TLS_FILE', [file, (err as NodeJS.ErrnoException).code ?? String(err)], { cause: err })
  }
  try {
    return splitBundle(text)
  } catch (err) {
    throw new PorchlightError('PL_ERR_TLS_FILE', [file, (err as Error).message], { cause: err })
  }
}

/** Reads a CA file (one or more CERTIFICATE blocks). */
export async function readCaFile(file: string): Promise<string[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new PorchlightError('PL_ERR_TLS_FILE', [file, (err as NodeJS.ErrnoException).code ?? String(err)], { cause: err })
  }
  const blocks = [...text.matchAll(PEM_BLOCK)].filter((m) => m[1] === 'CERTIFICATE').map((m) => `${m[0]}\n`)
  if (blocks.length === 0) throw new PorchlightError('PL_ERR_TLS_FILE', [file, 'no CERTIFICATE block'])
  return blocks
}
