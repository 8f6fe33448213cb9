/** One PEM block: its label (`CERTIFICATE`, `PRIVATE KEY`, …) and the whole armoured text. */
export interface PemBlock {
  label: string
  pem: string
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n[A-Za-z0-9+/=\r\n\t ]*?-----END \1-----/g

/** Every well-formed PEM block in `text`, in order; text between blocks is ignored. */
export function splitPemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = []
  for (const match of text.matchAll(PEM_BLOCK)) {
    blocks.push({ label: match[1] ?? '', pem: `${match[0].replace(/\r\n/g, '\n')}\n` })
  }
  return blocks
}

/** DER bytes as PEM with 64-character lines. */
export function derToPem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`
}
