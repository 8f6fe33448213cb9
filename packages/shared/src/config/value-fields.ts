import { accessSync, closeSync, constants as fsConstants, fstatSync, openSync, readSync, statSync } from 'node:fs'
import { isIP } from 'node:net'
import { convert, requireString } from './fields.js'
import { normalizeHostname } from './hostname.js'
import { resolveConfigPath } from './paths.js'
import { checkSecretSyntax, isSecretReference } from './secret.js'

/** Converters shared by relay.yaml and agent.yaml fields. */

/** What converters that touch the file system or environment need. */
export interface SchemaContext {
  /** The config file's directory; relative paths are resolved against it. */
  baseDir: string
  env: NodeJS.ProcessEnv
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/
// A PEM marker sits in the first few hundred bytes of any certificate or key file.
const PEM_SNIFF_BYTES = 64 * 1024

/** A DNS name (no wildcard, no IP literal), normalised. */
export function hostField(what: string) {
  return convert((v) => {
    const text = requireString(v, what)
    const name = normalizeHostname(text)
    if (name === null || isIP(name) !== 0) throw new Error(`invalid hostname ${JSON.stringify(text)} (expected ${what})`)
    return name
  })
}

/** An http(s) URL, kept as written apart from URL normalisation. */
export function httpUrlField() {
  return convert((v) => {
    const text = requireString(v, 'an https:// URL')
    let url: URL
    try {
      url = new URL(text)
    } catch {
      throw new Error(`${JSON.stringify(text)} is not a URL`)
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`expected an https:// URL, got ${JSON.stringify(text)}`)
    return url.toString()
  })
}

/** A directory or file path resolved against the config file's directory; null when absent. */
export function nullablePath(ctx: SchemaContext) {
  return convert((v) => (v === null || v === undefined ? null : resolveConfigPath(v, ctx.baseDir, ctx.env)))
}

/**
 * A certificate or key file that must exist now: relay TLS files are checked when the config is
 * loaded (so `porchlight-relay check` catches them), unlike the agent's `cert`, which is read
 * when the agent connects.
 */
export function pemFile(ctx: SchemaContext) {
  return convert((v) => checkPemFile(resolveConfigPath(v, ctx.baseDir, ctx.env)))
}

/** A program the relay runs (acme.dns_hook): a regular file with an execute bit, checked at load. */
export function checkExecutable(file: string): string {
  let st
  try {
    st = statSync(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new Error(`file not found: ${file}`)
    throw new Error(`cannot read ${file}: ${(err as Error).message}`)
  }
  if (!st.isFile()) throw new Error(`not a regular file: ${file}`)
  try {
    accessSync(file, fsConstants.X_OK)
  } catch {
    throw new Error(`not executable: ${file} (chmod +x it)`)
  }
  return file
}

/** Opens a file named in a config for reading: a one-line error when it is missing, unreadable or not a regular file. */
export function openConfigFile(file: string): number {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new Error(`file not found: ${file}`)
    if (code === 'EACCES') throw new Error(`permission denied: ${file}`)
    throw new Error(`cannot open ${file}: ${(err as Error).message}`)
  }
  try {
    if (!fstatSync(fd).isFile()) throw new Error(`not a regular file: ${file}`)
  } catch (err) {
    closeSync(fd)
    throw err
  }
  return fd
}

export function checkPemFile(file: string): string {
  const fd = openConfigFile(file)
  try {
    const buf = Buffer.alloc(PEM_SNIFF_BYTES)
    const n = readSync(fd, buf, 0, buf.length, 0)
    if (!buf.subarray(0, n).toString('latin1').includes('-----BEGIN ')) throw new Error(`no PEM block in ${file}`)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EISDIR') throw new Error(`not a regular file: ${file}`)
    throw err
  } finally {
    closeSync(fd)
  }
  return file
}

/**
 * A hex SHA-256 (lowercased), or an env:/file: reference to one that is resolved after
 * validation. Tokens themselves never appear in relay.yaml, only their hashes.
 */
export function sha256Spec(value: unknown): string {
  const text = checkSecretSyntax(value)
  if (isSecretReference(text)) return text
  if (!SHA256_HEX.test(text)) {
    throw new Error('expected 64 hex characters (the SHA-256 of a token; `porchlight-relay token new NAME` prints one)')
  }
  return text.toLowerCase()
}

export function isSha256Hex(text: string): boolean {
  return SHA256_HEX.test(text)
}
