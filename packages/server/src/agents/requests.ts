import type { AgentMessage, RelayMessage } from '@porchlight/shared/protocol'
import { isPorchlightError } from '@porchlight/shared/errors'
import { handlerTable, lookupHandler } from '@porchlight/shared/protocol'
import type { LinkStore } from '../access/links.js'
import type { HttpRoute } from './registry.js'

/** Who asks: the session's identity, what it published and its logger. */
export interface Requester {
  readonly agent: string
  readonly id: string
  readonly results: unknown
  readonly log: { error(obj: object, msg: string): void; info(obj: object, msg: string): void }
}

/** What the control requests act on, handed in by the session (no reach through a shared context). */
export interface ControlRequestDeps {
  routesOf(agent: string): readonly Pick<HttpRoute, 'host' | 'tunnelId' | 'access'>[]
  links: Pick<LinkStore, 'create' | 'list' | 'revoke'>
  publicUrl(host: string): string
}

type Request = Extract<AgentMessage, { type: 'request' }>
type Reply = Extract<RelayMessage, { type: 'response' }>

const MAX_LINK_TTL_MS = 365 * 24 * 3600 * 1000

/** Answers an agent's control `request` (share links, status). Never throws. */
export async function handleControlRequest(session: Requester, deps: ControlRequestDeps, req: Request): Promise<Reply> {
  try {
    const handler = lookupHandler<Op>(ops, req.op)
    if (handler === undefined) return { type: 'response', id: req.id, ok: false, code: 'PL_ERR_PROTO_BAD_MESSAGE', message: `unknown op ${req.op.slice(0, 64)}` }
    const result = await handler(session, deps, req.args)
    return { type: 'response', id: req.id, ok: true, result }
  } catch (err) {
    if (isPorchlightError(err)) return { type: 'response', id: req.id, ok: false, code: err.code, message: err.message }
    session.log.error({ err }, 'control request failed')
    return { type: 'response', id: req.id, ok: false, code: 'PL_ERR_INTERNAL', message: 'internal error' }
  }
}

class RequestError extends Error {
  constructor(readonly code: string, message: string) { super(message) }
}

function linkHostOf(session: Requester, deps: ControlRequestDeps, host: unknown): string {
  if (typeof host !== 'string') throw new RequestError('PL_ERR_PROTO_BAD_MESSAGE', 'host is required')
  const wanted = host.toLowerCase().replace(/\.$/, '')
  const route = deps.routesOf(session.agent).find((r) => r.host === wanted || r.tunnelId === host)
  if (!route) throw new RequestError('PL_ERR_NOT_FOUND', `${host} not found`)
  if (!route.access?.links) throw new RequestError('PL_ERR_PROTO_BAD_MESSAGE', `share links are not enabled for ${route.host} (set access.links: true)`)
  return route.host
}

type Op = (session: Requester, deps: ControlRequestDeps, args: Record<string, unknown>) => Promise<unknown>

// Null-prototype and frozen: an agent naming an inherited property (`constructor`) gets "unknown op".
const ops = handlerTable<Record<string, Op>>({
  'link.create': async (session, deps, args) => {
    const host = linkHostOf(session, deps, args['host'])
    const expiresMs = typeof args['expires_ms'] === 'number' ? args['expires_ms'] : 24 * 3600 * 1000
    if (!(expiresMs > 0 && expiresMs <= MAX_LINK_TTL_MS)) throw new RequestError('PL_ERR_PROTO_BAD_MESSAGE', 'expires must be between 1s and 365d')
    const note = typeof args['note'] === 'string' ? args['note'].slice(0, 200) : ''
    const link = await deps.links.create(host, expiresMs, note)
    const url = `${deps.publicUrl(host)}?porchlight_share=${encodeURIComponent(link.token)}`
    session.log.info({ host, link: link.id }, 'share link created')
    return { id: link.id, host, url, expires_at: new Date(link.expiresAt).toISOString(), note }
  },
  'link.list': async (session, deps) => {
    const hosts = new Set(deps.routesOf(session.agent).map((r) => r.host))
    return deps.links.list().filter((l) => hosts.has(l.host))
  },
  'link.revoke': async (session, deps, args) => {
    const id = String(args['id'] ?? '')
    const hosts = new Set(deps.routesOf(session.agent).map((r) => r.host))
    const link = deps.links.list().find((l) => l.id === id)
    if (!link || !hosts.has(link.host)) throw new RequestError('PL_ERR_NOT_FOUND', `link ${id.slice(0, 64)} not found`)
    await deps.links.revoke(id)
    session.log.info({ host: link.host, link: id }, 'share link revoked')
    return { id, revoked: true }
  },
  status: async (session) => ({
    agent: session.agent,
    session: session.id,
    tunnels: session.results,
  }),
})

// RequestError carries a code like PorchlightError so isPorchlightError-style checks see it.
Object.defineProperty(RequestError.prototype, 'name', { value: 'RequestError' })
export { RequestError }
