import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import path from 'node:path'

/**
 * ACME files under `state:`: one folder per directory URL (a staging account and its certificates
 * never mix with production ones), holding the account key and one certificate + key per name.
 * Folders are 0700, files 0600, written to a temporary name and renamed (never half a PEM).
 */
export class AcmeStore {
  readonly dir: string

  constructor(stateDir: string, directoryUrl: string) {
    this.dir = path.join(stateDir, 'acme', directoryId(directoryUrl))
  }

  /** The account key, or null when this directory has none yet. */
  readAccountKey(): Buffer | null {
    return readOrNull(path.join(this.dir, 'account.key'))
  }

  writeAccountKey(pem: Buffer): void {
    this.write('account.key', pem)
  }

  /** A stored certificate chain and key for `name`, or null. */
  read(name: string): { cert: Buffer; key: Buffer } | null {
    const base = fileBase(name)
    const cert = readOrNull(path.join(this.dir, 'certs', `${base}.crt`))
    const key = readOrNull(path.join(this.dir, 'certs', `${base}.key`))
    return cert && key ? { cert, key } : null
  }

  save(name: string, cert: Buffer, key: Buffer): void {
    const base = fileBase(name)
    this.write(path.join('certs', `${base}.key`), key)
    this.write(path.join('certs', `${base}.crt`), cert)
  }

  private write(rel: string, data: Buffer): void {
    const file = path.join(this.dir, rel)
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
    const tmp = `${file}.${process.pid}.tmp`
    writeFileSync(tmp, data, { mode: 0o600 })
    renameSync(tmp, file)
  }
}

/** A directory URL's short id: its folder under `state:` and its prefix in a cluster's Redis. */
export function directoryId(directoryUrl: string): string {
  return createHash('sha256').update(directoryUrl).digest('hex').slice(0, 16)
}

/** `*.tunnel.example.com` is stored as `_wildcard.tunnel.example.com`. */
function fileBase(name: string): string {
  return name.startsWith('*.') ? `_wildcard.${name.slice(2)}` : name
}

function readOrNull(file: string): Buffer | null {
  try {
    return readFileSync(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}
