import { randomBytes } from 'node:crypto'

/**
 * A fresh certificate serial: 16 random bytes as 32 lowercase hex digits. The first byte is
 * forced into 0x10..0x7f so the DER INTEGER is positive, minimally encoded and has no leading
 * zero nibble: the hex we store is then the same string Node reports (after lowercasing).
 */
export function randomSerialHex(): string {
  const bytes = randomBytes(16)
  bytes[0] = 0x10 + ((bytes[0] ?? 0) % 0x70)
  return bytes.toString('hex')
}

/**
 * The one spelling of a serial used in files, sets and comparisons: lowercase hex without
 * leading zeros. Node's `getPeerCertificate().serialNumber` is uppercase and may carry a leading
 * `0` per byte, so every serial read from a socket or a file goes through here.
 */
export function normalizeSerial(serial: string): string {
  const hex = serial.trim().toLowerCase().replace(/:/g, '')
  if (!/^[0-9a-f]+$/.test(hex)) return ''
  return hex.replace(/^0+/, '') || '0'
}
