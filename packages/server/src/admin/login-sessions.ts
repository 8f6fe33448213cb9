import { randomBytes, timingSafeEqual } from 'node:crypto'

/** The dashboard's session cookie (HttpOnly, SameSite=Strict, never readable by the page). */
export const ADMIN_COOKIE = 'porchlight_admin'
/** The header a state-changing request authenticated by the cookie must carry (the page's CSRF token). */
export const CSRF_HEADER = 'x-porchlight-csrf'
/** How long a dashboard login lasts. */
export const ADMIN_SESSION_TTL_MS = 12 * 3600_000
/** Logins held at once; a new one past it pushes out the oldest. */
const MAX_SESSIONS = 64

export interface AdminSession {
  id: string
  /** Sent in the dashboard page only; a cross-site page can neither read it nor guess it. */
  csrf: string
  expiresAt: number
}

/**
 * Dashboard logins: random session ids held in memory (a restart logs everyone out), each with
 * its own CSRF token and an absolute expiry. The admin token itself never goes into a cookie.
 */
export class AdminSessions {
  private readonly byId = new Map<string, AdminSession>()
  private readonly ttlMs: number
  private readonly now: () => number

  constructor(opts: { ttlMs?: number; now?: () => number } = {}) {
    this.ttlMs = opts.ttlMs ?? ADMIN_SESSION_TTL_MS
    this.now = opts.now ?? Date.now
  }

  create(): AdminSession {
    this.prune()
    while (this.byId.size >= MAX_SESSIONS) this.byId.delete(this.byId.keys().next().value as string)
    const session = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(32).toString('base64url'), expiresAt: this.now() + this.ttlMs }
    this.byId.set(session.id, session)
    return session
  }

  /** The live session named by the request's Cookie header, or null. */
  fromCookie(cookieHeader: string | undefined): AdminSession | null {
    const id = readCookie(cookieHeader, ADMIN_COOKIE)
    if (id === null) return null
    const session = this.byId.get(id)
    if (session === undefined) return null
    if (session.expiresAt <= this.now()) {
      this.byId.delete(id)
      return null
    }
    return session
  }

  destroy(id: string): void {
    this.byId.delete(id)
  }

  get size(): number {
    return this.byId.size
  }

  /** The Set-Cookie value for a new login (no Secure: the admin listener is plain HTTP on loopback). */
  cookieFor(session: AdminSession): string {
    return `${ADMIN_COOKIE}=${session.id}; Path=/; Max-Age=${Math.floor(this.ttlMs / 1000)}; HttpOnly; SameSite=Strict`
  }

  private prune(): void {
    const now = this.now()
    for (const [id, s] of this.byId) if (s.expiresAt <= now) this.byId.delete(id)
  }
}

/** The Set-Cookie value that ends a login in the browser. */
export const CLEAR_ADMIN_COOKIE = `${ADMIN_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict`

/** Constant-time comparison of the CSRF header with the session's token. */
export function csrfMatches(session: AdminSession, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false
  const a = Buffer.from(header)
  const b = Buffer.from(session.csrf)
  return a.length === b.length && timingSafeEqual(a, b)
}

function readCookie(header: string | undefined, name: string): string | null {
  if (header === undefined) return null
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return null
}
