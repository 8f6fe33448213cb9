import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PorchlightError } from '@porchlight/shared/errors'

/**
 * Share links: HMAC-SHA256 tokens bound to {link id, host, expiry}. Verification is stateless
 * (the MAC and the expiry come from the token) plus one in-memory set lookup for revocations,
 * so a revocation applies to the very next request. With a state directory, the secret
 * (link-secret) and the link list with its revocations (links.json) survive restarts.
 */
export interface ShareLink {
  id: string
  host: string
  note: string
  /** Epoch ms. */
  createdAt: number
  /** Epoch ms. */
  expiresAt: number
  revoked: boolean
}

/** What a store tells a cluster after a local change (create or revoke), to replay on the other members. */
export type LinkEvent = { t: 'link.create'; link: ShareLink } | { t: 'link.revoke'; id: string }

export type LinkFailure = 'tampered' | 'expired' | 'revoked' | 'wrong_host' | 'malformed'
export type LinkCheck = { ok: true; id: string; exp: number } | { ok: false; reason: LinkFailure }

export interface LinkStoreOptions {
  /** Where link-secret and links.json live; null keeps everything in memory. */
  stateDir: string | null
  /** HMAC key (>= 32 bytes); default: read or create <stateDir>/link-secret, or random in memory. */
  secret?: Buffer
  /** Longest lifetime a link may have; default 365 days. */
  maxTtlMs?: number
  /** Most links kept at once; default 10,000. */
  maxLinks?: number
  now?: () => number
}

/** The query parameter a share URL carries its token in. */
export const SHARE_PARAM = 'porchlight_share'
export const ACCESS_COOKIE = 'porchlight_access'
export const ACCESS_COOKIE_HTTPS = '__Host-porchlight_access'

const TOKEN_PREFIX = 'porchlight-share-v1\0'
const MAX_TOKEN_CHARS = 1024
// payload "." mac, both base64url; a SHA-256 MAC is 43 base64url characters.
const TOKEN_SHAPE = /^([A-Za-z0-9_-]{1,900})\.([A-Za-z0-9_-]{43})$/
const MAX_NOTE_CHARS = 200
const DAY_MS = 24 * 3600 * 1000
// Expired links stay listed for a day, then are dropped (an expired token fails on its own).
const PRUNE_AFTER_MS = DAY_MS

export class LinkStore {
  private readonly links = new Map<string, ShareLink>()
  private readonly revokedIds = new Set<string>()
  private readonly secret: Buffer
  private readonly stateDir: string | null
  private readonly maxTtlMs: number
  private readonly maxLinks: number
  private readonly now: () => number
  /** Told after every local create and revoke (cluster members replay them); not for applied remote events. */
  onChange: ((event: LinkEvent) => void) | null = null

  constructor(opts: LinkStoreOptions) {
    this.stateDir = opts.stateDir
    this.maxTtlMs = opts.maxTtlMs ?? 365 * DAY_MS
    this.maxLinks = opts.maxLinks ?? 10_000
    this.now = opts.now ?? Date.now
    // Sync I/O: this runs once at startup, before any listener exists.
    if (this.stateDir !== null) mkdirSync(this.stateDir, { recursive: true, mode: 0o700 })
    this.secret = opts.secret ?? this.loadOrCreateSecret()
    if (this.secret.length < 32) throw new RangeError('share link secret must be at least 32 bytes')
    for (const link of this.loadLinks()) {
      this.links.set(link.id, link)
      if (link.revoked) this.revokedIds.add(link.id)
    }
  }

  /** Mints a link for `host` valid for `expiresMs`; the token is returned once and never stored. */
  create(host: string, expiresMs: number, note = ''): { id: string; token: string; expiresAt: number } {
    if (!(Number.isFinite(expiresMs) && expiresMs >= 1000 && expiresMs <= this.maxTtlMs)) {
      throw new PorchlightError('PL_ERR_PROTO_BAD_MESSAGE', [`share link lifetime must be between 1 s and ${Math.round(this.maxTtlMs / DAY_MS)} days`])
    }
    this.prune()
    if (this.links.size >= this.maxLinks) {
      throw new PorchlightError('PL_ERR_PROTO_BAD_MESSAGE', [`too many share links (${this.maxLinks}); revoke some first`])
    }
    // Hex, not base64url: an id starting with '-' reads as an option to `porchlight link revoke ID`.
    const id = randomBytes(8).toString('hex')
    const createdAt = this.now()
    const expiresAt = createdAt + Math.floor(expiresMs)
    const normalizedHost = normalizeHost(host)
    const payload = Buffer.from(JSON.stringify({ v: 1, i: id, h: normalizedHost, e: expiresAt })).toString('base64url')
    const token = `${payload}.${this.mac(payload)}`
    const link = { id, host: normalizedHost, note: note.slice(0, MAX_NOTE_CHARS), createdAt, expiresAt, revoked: false }
    this.links.set(id, link)
    this.save()
    this.onChange?.({ t: 'link.create', link: { ...link } })
    return { id, token, expiresAt }
  }

  /** Checks a token presented for `host`. Never throws; hostile input yields `malformed`/`tampered`. */
  verify(token: string, host: string, nowMs: number = this.now()): LinkCheck {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) return { ok: false, reason: 'malformed' }
    const shape = TOKEN_SHAPE.exec(token)
    if (!shape) return { ok: false, reason: 'malformed' }
    const payload = shape[1] ?? ''
    const presented = Buffer.from(shape[2] ?? '')
    const expected = Buffer.from(this.mac(payload))
    // Both are 43 ASCII characters (the regex guarantees it), so timingSafeEqual cannot throw.
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return { ok: false, reason: 'tampered' }
    // Only a payload we signed ourselves is ever parsed.
    const claims = parseClaims(payload)
    if (!claims) return { ok: false, reason: 'malformed' }
    if (claims.h !== normalizeHost(host)) return { ok: false, reason: 'wrong_host' }
    if (this.revokedIds.has(claims.i)) return { ok: false, reason: 'revoked' }
    // A lifetime beyond the policy can only mean the policy was tightened since; treat as expired.
    if (claims.e <= nowMs || claims.e > nowMs + this.maxTtlMs) return { ok: false, reason: 'expired' }
    return { ok: true, id: claims.i, exp: claims.e }
  }

  /** Links (copies), optionally for one host, oldest first. */
  list(host?: string): ShareLink[] {
    const wanted = host === undefined ? null : normalizeHost(host)
    return [...this.links.values()].filter((l) => wanted === null || l.host === wanted).map((l) => ({ ...l }))
  }

  /** Revokes a link by id; false if no such link. Takes effect for the next verify(). */
  revoke(id: string): boolean {
    const link = this.links.get(id)
    if (!link) return false
    this.revokedIds.add(id)
    if (!link.revoked) {
      link.revoked = true
      this.save()
    }
    this.onChange?.({ t: 'link.revoke', id })
    return true
  }

  /**
   * A change another cluster member made: a link it minted is listed here too, a revocation
   * applies here from the next verify(), even for a link this store never listed (fail closed).
   */
  apply(event: LinkEvent): void {
    if (event.t === 'link.create') {
      if (this.links.has(event.link.id) || this.links.size >= this.maxLinks) return
      this.links.set(event.link.id, { ...event.link, revoked: this.revokedIds.has(event.link.id) })
    } else {
      this.revokedIds.add(event.id)
      const link = this.links.get(event.id)
      if (link) link.revoked = true
    }
    this.save()
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.secret).update(TOKEN_PREFIX).update(payload).digest('base64url')
  }

  private prune(): void {
    const cutoff = this.now() - PRUNE_AFTER_MS
    for (const [id, link] of this.links) {
      if (link.expiresAt <= cutoff) {
        this.links.delete(id)
        this.revokedIds.delete(id)
      }
    }
  }

  private loadOrCreateSecret(): Buffer {
    if (this.stateDir === null) return randomBytes(32)
    const file = join(this.stateDir, 'link-secret')
    try {
      const text = readFileSync(file, 'utf8').trim()
      const secret = Buffer.from(text, 'base64')
      if (secret.length < 32) throw new Error('shorter than 32 bytes')
      return secret
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new PorchlightError('PL_ERR_STATE_FILE', [file, (err as Error).message], { cause: err })
      }
    }
    const secret = randomBytes(32)
    try {
      writeFileSync(file, `${secret.toString('base64')}\n`, { mode: 0o600, flag: 'wx' })
    } catch (err) {
      throw new PorchlightError('PL_ERR_STATE_FILE', [file, (err as Error).message], { cause: err })
    }
    return secret
  }

  private loadLinks(): ShareLink[] {
    if (this.stateDir === null) return []
    const file = join(this.stateDir, 'links.json')
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw new PorchlightError('PL_ERR_STATE_FILE', [file, (err as Error).message], { cause: err })
    }
    // Fail closed: silently dropping an unreadable file would un-revoke links.
    let data: unknown
    try {
      data = JSON.parse(text)
    } catch (err) {
      throw new PorchlightError('PL_ERR_STATE_FILE', [file, `not valid JSON (${(err as Error).message})`], { cause: err })
    }
    const links = (data as { links?: unknown } | null)?.links
    if (!Array.isArray(links) || !links.every(isShareLink)) {
      throw new PorchlightError('PL_ERR_STATE_FILE', [file, 'expected {"version":1,"links":[{id, host, note, createdAt, expiresAt, revoked}]}'])
    }
    return links
  }

  // Small file, rare writes (link create/revoke): synchronous temp-file + rename keeps it atomic.
  private save(): void {
    if (this.stateDir === null) return
    const file = join(this.stateDir, 'links.json')
    const tmp = `${file}.${process.pid}.tmp`
    try {
      writeFileSync(tmp, `${JSON.stringify({ version: 1, links: [...this.links.values()] }, null, 2)}\n`, { mode: 0o600 })
      renameSync(tmp, file)
    } catch (err) {
      rmSync(tmp, { force: true })
      throw new PorchlightError('PL_ERR_STATE_FILE', [file, (err as Error).message], { cause: err })
    }
  }
}

/** The access cookie's name: `__Host-` (host-only, Secure, Path=/) on HTTPS. */
export function cookieName(https: boolean): string {
  return https ? ACCESS_COOKIE_HTTPS : ACCESS_COOKIE
}

/** Set-Cookie value for a verified link token: host-only (no Domain), expiring with the link. */
export function buildAccessCookie(token: string, exp: number, https: boolean, nowMs: number = Date.now()): string {
  const maxAgeS = Math.max(0, Math.floor((exp - nowMs) / 1000))
  return `${cookieName(https)}=${token}; Path=/; Max-Age=${maxAgeS}; HttpOnly; SameSite=Lax${https ? '; Secure' : ''}`
}

/** Cookies read per request at most (a browser may send the same name more than once). */
const MAX_ACCESS_COOKIES = 4

/** Every value of this scheme's access cookie, in header order (at most 4). */
export function readAccessCookies(cookieHeader: string | undefined, https: boolean): string[] {
  if (!cookieHeader) return []
  const name = cookieName(https)
  const values: string[] = []
  for (const pair of cookieHeader.split(';')) {
    const eq = pair.indexOf('=')
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue
    values.push(pair.slice(eq + 1).trim())
    if (values.length >= MAX_ACCESS_COOKIES) break
  }
  return values
}

/** The first access cookie value for this scheme, or null. */
export function readAccessCookie(cookieHeader: string | undefined, https: boolean): string | null {
  return readAccessCookies(cookieHeader, https)[0] ?? null
}

/** The Cookie header without the relay's cookies (either scheme), or null if nothing is left. */
export function stripRelayCookies(cookieHeader: string | undefined): string | null {
  if (!cookieHeader) return null
  const kept = cookieHeader
    .split(';')
    .map((p) => p.trim())
    .filter((p) => {
      if (p === '') return false
      const eq = p.indexOf('=')
      const name = (eq === -1 ? p : p.slice(0, eq)).trim().toLowerCase()
      return name !== ACCESS_COOKIE && name !== ACCESS_COOKIE_HTTPS.toLowerCase()
    })
  return kept.length === 0 ? null : kept.join('; ')
}

/**
 * Removes every `porchlight_share` parameter from a request target and returns the first token.
 * Other parameters keep their exact bytes and order. A target whose path starts with "//" is
 * collapsed to one "/" so the redirect that follows can never point at another host.
 */
export function stripShareParam(url: string): { url: string; token: string | null } {
  const q = url.indexOf('?')
  const path = safePath(q === -1 ? url : url.slice(0, q))
  if (q === -1) return { url: path, token: null }
  let token: string | null = null
  const kept: string[] = []
  for (const part of url.slice(q + 1).split('&')) {
    const eq = part.indexOf('=')
    const name = eq === -1 ? part : part.slice(0, eq)
    if (decodeComponent(name) === SHARE_PARAM) {
      if (token === null && eq !== -1) token = decodeComponent(part.slice(eq + 1))
      continue
    }
    kept.push(part)
  }
  const query = kept.filter((p) => p !== '').join('&')
  return { url: query === '' ? path : `${path}?${query}`, token }
}

function safePath(path: string): string {
  if (!path.startsWith('/')) return `/${path}`
  return path.replace(/^[/\\]+/, '/')
}

function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '))
  } catch {
    return text
  }
}

function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '')
}

function parseClaims(payload: string): { i: string; h: string; e: number } | null {
  try {
    const c = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>
    if (c['v'] !== 1 || typeof c['i'] !== 'string' || typeof c['h'] !== 'string' || typeof c['e'] !== 'number' || !Number.isFinite(c['e'])) return null
    return { i: c['i'], h: c['h'], e: c['e'] }
  } catch {
    return null
  }
}

function isShareLink(x: unknown): x is ShareLink {
  const l = x as Partial<ShareLink> | null
  return typeof l === 'object' && l !== null && typeof l.id === 'string' && typeof l.host === 'string' && typeof l.note === 'string' &&
    typeof l.createdAt === 'number' && typeof l.expiresAt === 'number' && typeof l.revoked === 'boolean'
}
