import { PorchlightError } from '../errors.js'
import { splitPemBlocks } from './pem.js'

export interface ClientBundle {
  /** The client certificate (first CERTIFICATE block). */
  cert: string
  /** Its private key. */
  key: string
  /** Every further CERTIFICATE block: the relay's CA, trusted for the relay in addition to system roots. */
  ca: string[]
}

const KEY_LABELS = new Set(['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY'])

/**
 * Splits a `cert issue` bundle (cert + key + CA, in any order after the first certificate) for
 * the agent's TLS options. `source` names the file in errors.
 */
export function parseBundle(pem: string, source = 'certificate bundle'): ClientBundle {
  const blocks = splitPemBlocks(pem)
  const certs = blocks.filter((b) => b.label === 'CERTIFICATE').map((b) => b.pem)
  const keys = blocks.filter((b) => KEY_LABELS.has(b.label)).map((b) => b.pem)
  if (blocks.some((b) => b.label === 'ENCRYPTED PRIVATE KEY')) {
    throw new PorchlightError('PL_ERR_TLS_FILE', [source, 'encrypted private keys are not supported'])
  }
  const [cert, ...ca] = certs
  const [key] = keys
  if (cert === undefined) throw new PorchlightError('PL_ERR_TLS_FILE', [source, 'no CERTIFICATE block'])
  if (key === undefined) throw new PorchlightError('PL_ERR_TLS_FILE', [source, 'no PRIVATE KEY block'])
  if (keys.length > 1) throw new PorchlightError('PL_ERR_TLS_FILE', [source, 'more than one private key'])
  return { cert, key, ca }
}
