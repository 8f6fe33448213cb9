import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PorchlightError } from '../errors.js'
import { normalizeSerial } from './serial.js'

/**
 * The PKI directory's files and their JSON bookkeeping. Writes go to a temp file and are renamed
 * into place, so a reader (the relay polling revoked.json) never sees half a file.
 */
export const PKI_FILES = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  serverCert: 'server.crt',
  serverKey: 'server.key',
  issued: 'issued.json',
  revoked: 'revoked.json',
  crl: 'ca.crl',
} as const

export type PkiFile = keyof typeof PKI_FILES

export function pkiPath(dir: string, file: PkiFile): string {
  return join(dir, PKI_FILES[file])
}

/** One issued client certificate, as kept in issued.json. */
export interface IssuedRecord {
  name: string
  /** Normalised lowercase hex. */
  serial: string
  /** ISO-8601. */
  notAfter: string
  revoked: boolean
  /** "agent" or "visitor"; absent in records written before visitor certificates existed (agent). */
  kind?: 'agent' | 'visitor'
}

/** One revocation, as kept in revoked.json. */
export interface RevokedRecord {
  serial: string
  name: string
  /** ISO-8601. */
  revokedAt: string
}

interface IssuedFile { version: 1; certs: IssuedRecord[] }
interface RevokedFile { version: 1; crlNumber: number; revoked: RevokedRecord[] }

export async function readIssued(dir: string): Promise<IssuedRecord[]> {
  const data = await readJson(pkiPath(dir, 'issued'))
  if (data === null) return []
  const certs = (data as Partial<IssuedFile>).certs
  if (!Array.isArray(certs)) throw new PorchlightError('PL_ERR_TLS_FILE', [pkiPath(dir, 'issued'), 'expected {"version":1,"certs":[…]}'])
  return certs.filter(isIssuedRecord).map((r) => ({ ...r, serial: normalizeSerial(r.serial) }))
}

export async function writeIssued(dir: string, certs: IssuedRecord[]): Promise<void> {
  const body: IssuedFile = { version: 1, certs }
  await writeFileAtomic(pkiPath(dir, 'issued'), `${JSON.stringify(body, null, 2)}\n`, 0o644)
}

export async function readRevoked(dir: string): Promise<{ crlNumber: number; revoked: RevokedRecord[] }> {
  return parseRevoked(dir, await readJson(pkiPath(dir, 'revoked')))
}

/** Synchronous twin of readRevoked for the relay's startup and its revocation watcher (a small file). */
export function readRevokedSync(dir: string): { crlNumber: number; revoked: RevokedRecord[] } {
  const path = pkiPath(dir, 'revoked')
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { crlNumber: 0, revoked: [] }
    throw new PorchlightError('PL_ERR_TLS_FILE', [path, (err as Error).message], { cause: err })
  }
  return parseRevoked(dir, parseJson(path, text))
}

function parseRevoked(dir: string, data: unknown): { crlNumber: number; revoked: RevokedRecord[] } {
  if (data === null) return { crlNumber: 0, revoked: [] }
  const file = data as Partial<RevokedFile>
  if (!Array.isArray(file.revoked)) throw new PorchlightError('PL_ERR_TLS_FILE', [pkiPath(dir, 'revoked'), 'expected {"version":1,"revoked":[…]}'])
  // Fail closed: a record we cannot read could be a revocation we would otherwise forget.
  const bad = file.revoked.findIndex((r) => !isRevokedRecord(r) || normalizeSerial(r.serial) === '')
  if (bad !== -1) throw new PorchlightError('PL_ERR_TLS_FILE', [pkiPath(dir, 'revoked'), `revoked[${bad}] is not {serial, name, revokedAt}`])
  const revoked = (file.revoked as RevokedRecord[]).map((r) => ({ ...r, serial: normalizeSerial(r.serial) }))
  return { crlNumber: typeof file.crlNumber === 'number' ? file.crlNumber : 0, revoked }
}

export async function writeRevoked(dir: string, crlNumber: number, revoked: RevokedRecord[]): Promise<void> {
  const body: RevokedFile = { version: 1, crlNumber, revoked }
  await writeFileAtomic(pkiPath(dir, 'revoked'), `${JSON.stringify(body, null, 2)}\n`, 0o644)
}

/** The CA certificate and key; PL_ERR_PKI_MISSING when `ca init` has not been run. */
export async function loadCa(dir: string): Promise<{ certPem: string; keyPem: string }> {
  try {
    const [certPem, keyPem] = await Promise.all([readFile(pkiPath(dir, 'caCert'), 'utf8'), readFile(pkiPath(dir, 'caKey'), 'utf8')])
    return { certPem, keyPem }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new PorchlightError('PL_ERR_PKI_MISSING', [dir], { cause: err })
    throw new PorchlightError('PL_ERR_TLS_FILE', [pkiPath(dir, 'caKey'), (err as Error).message], { cause: err })
  }
}

/** Writes via a temp file + rename so readers see the old or the new content, never a mix. */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' })
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
}

const locks = new Map<string, Promise<unknown>>()

/**
 * Serialises read-modify-write of one PKI directory within this process (e.g. two admin API
 * calls issuing at once). Separate CLI processes are not coordinated; they are run by hand.
 */
export async function withPkiLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const previous = locks.get(dir) ?? Promise.resolve()
  const run = previous.then(fn, fn)
  const tail = run.catch(() => undefined)
  locks.set(dir, tail)
  try {
    return await run
  } finally {
    if (locks.get(dir) === tail) locks.delete(dir)
  }
}

async function readJson(path: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new PorchlightError('PL_ERR_TLS_FILE', [path, (err as Error).message], { cause: err })
  }
  return parseJson(path, text)
}

function parseJson(path: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new PorchlightError('PL_ERR_TLS_FILE', [path, `not valid JSON (${(err as Error).message})`], { cause: err })
  }
}

function isIssuedRecord(r: unknown): r is IssuedRecord {
  const x = r as Partial<IssuedRecord> | null
  return typeof x === 'object' && x !== null && typeof x.name === 'string' && typeof x.serial === 'string' &&
    typeof x.notAfter === 'string' && typeof x.revoked === 'boolean'
}

function isRevokedRecord(r: unknown): r is RevokedRecord {
  const x = r as Partial<RevokedRecord> | null
  return typeof x === 'object' && x !== null && typeof x.serial === 'string' && typeof x.name === 'string' && typeof x.revokedAt === 'string'
}

export { fileExists } from '../fs.js'
