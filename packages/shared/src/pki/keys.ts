import { generateKeyPair } from 'node:crypto'
import { promisify } from 'node:util'

const generateKeyPairAsync = promisify(generateKeyPair)

export interface KeyPairPem {
  /** PKCS#8 PEM (`BEGIN PRIVATE KEY`). */
  privateKeyPem: string
  /** SPKI PEM (`BEGIN PUBLIC KEY`). */
  publicKeyPem: string
}

/**
 * RSA-2048 through OpenSSL on libuv's thread pool, so issuing a certificate never blocks the
 * event loop (node-forge's pure-JS keygen would stall it for hundreds of milliseconds).
 * RSA rather than P-256 because node-forge can only put RSA keys into certificates.
 */
export async function generateRsaKeyPair(): Promise<KeyPairPem> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', {
    modulusLength: 2048,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  })
  return { privateKeyPem: privateKey, publicKeyPem: publicKey }
}
