import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { isIP } from 'node:net'
import { parseBearer, tokenMatchesHash } from '@porchlight/shared/secrets'
import type { RelayContext } from '../context.js'
import { DASHBOARD_CSS, DASHBOARD_JS, dashboardPage, loginPage } from './dashboard.js'
import { AdminSessions, CLEAR_ADMIN_COOKIE, CSRF_HEADER, csrfMatches, type AdminSession } from './login-sessions.js'
import { registerApi } from './api.js'
import { ADMIN_REQUEST_TIMEOUT_MS } from './lazy-server.js'

export interface AdminApp {
  app: FastifyInstance
  /** fastify's handler for the listener's 'request' events. */
  handle: (req: IncomingMessage, res: ServerResponse) => void
  sessions: AdminSessions
}

/** Headers on every page and asset: no framing, no inline script, nothing cached. */
const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on the login form's POST.
  'referrer-policy': 'same-origin',
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The dashboard login the request came with (null: Bearer token, or none). */
    adminSession: AdminSession | null
  }
}

/**
 * The admin listener (loopback by default): /healthz; a JSON API and Prometheus /metrics behind
 * the admin token (a Bearer header, or the dashboard's login cookie); the dashboard at `/`.
 * State-changing requests that ride on the cookie also need the page's CSRF token in a header.
 */
export async function buildAdmin(ctx: RelayContext, server: Server): Promise<AdminApp> {
  // The listener is already bound (LazyAdminServer); fastify serves its requests.
  let handle: AdminApp['handle'] | null = null
  const app = Fastify({
    logger: false,
    requestTimeout: ADMIN_REQUEST_TIMEOUT_MS,
    bodyLimit: 64 * 1024,
    serverFactory: (handler) => { handle = handler; return server },
  })
  const sessions = new AdminSessions()
  // Wrong tokens typed into the login form: 10 per 5 minutes per address.
  const loginFailures = ctx.failureLimiter('admin_login', { limit: 10, windowMs: 5 * 60_000, maxKeys: 10_000 })
  app.decorateRequest('adminSession', null)

  // DNS rebinding: a web page on evil.example that re-points its name at 127.0.0.1 could
  // otherwise drive this API from the operator's browser. Its Host would be evil.example.
  app.addHook('onRequest', async (req, reply) => {
    if (!adminHostAllowed(req.headers.host)) {
      return reply.code(421).send({ code: 'PL_ERR_ADMIN_BAD_HOST', message: 'the admin listener answers only to loopback names and IP addresses' })
    }
  })
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })

  app.get('/healthz', async () => ({ ok: true }))
  // Readiness for load balancers: 503 while draining or (cluster) cut from Redis while a peer is not.
  app.get('/readyz', async (_req, reply) => {
    const r = ctx.readiness()
    return reply.code(r.ready ? 200 : 503).header('cache-control', 'no-store').send(r.ready ? { ready: true } : { ready: false, reason: r.reason })
  })
  app.get('/', async (req, reply) => {
    const session = sessions.fromCookie(req.headers.cookie)
    return reply.type('text/html; charset=utf-8').headers(PAGE_HEADERS).send(session ? dashboardPage(session.csrf) : loginPage())
  })
  app.get('/dashboard.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').headers(PAGE_HEADERS).send(DASHBOARD_JS))
  app.get('/favicon.ico', async (_req, reply) => reply.code(204).header('cache-control', 'max-age=86400').send())
  app.get('/dashboard.css', async (_req, reply) => reply.type('text/css; charset=utf-8').headers(PAGE_HEADERS).send(DASHBOARD_CSS))

  app.post('/login', async (req, reply) => {
    const ip = req.socket.remoteAddress ?? ''
    if (!sameOrigin(req)) return csrfRefused(reply)
    if (!(await loginFailures.peek(ip)).allowed) {
      ctx.metrics.limitRefused('admin_login_failures')
      return reply.code(429).type('text/html; charset=utf-8').headers({ ...PAGE_HEADERS, 'retry-after': '60' }).send(loginPage('Too many wrong tokens; try again in a few minutes.'))
    }
    const token = typeof (req.body as { token?: unknown } | undefined)?.token === 'string' ? (req.body as { token: string }).token : ''
    const expected = ctx.config.admin_token_sha256
    if (!expected || token === '' || !tokenMatchesHash(token, expected)) {
      await loginFailures.hit(ip)
      ctx.log.warn({ component: 'admin', ip }, 'dashboard login failed')
      return reply.code(401).type('text/html; charset=utf-8').headers(PAGE_HEADERS).send(loginPage('That is not the admin token.'))
    }
    const session = sessions.create()
    ctx.log.info({ component: 'admin', ip }, 'dashboard login')
    return reply.code(303).headers({ location: '/', 'set-cookie': sessions.cookieFor(session), 'cache-control': 'no-store' }).send()
  })

  await app.register(async (api) => {
    api.addHook('onRequest', async (req, reply) => {
      const expected = ctx.config.admin_token_sha256
      const token = parseBearer(req.headers.authorization)
      if (expected && token !== null && tokenMatchesHash(token, expected)) return
      const session = expected ? sessions.fromCookie(req.headers.cookie) : null
      if (session === null) return reply.code(401).send({ code: 'PL_ERR_ADMIN_UNAUTHORIZED', message: 'admin token required' })
      // The cookie rides along on any request the browser makes; a change needs the page's token too.
      if (req.method !== 'GET' && req.method !== 'HEAD' && (!sameOrigin(req) || !csrfMatches(session, req.headers[CSRF_HEADER]))) return csrfRefused(reply)
      req.adminSession = session
    })
    api.get('/metrics', async (_req, reply) => reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics()))
    api.post('/logout', async (req, reply) => {
      if (req.adminSession) sessions.destroy(req.adminSession.id)
      return reply.code(204).header('set-cookie', CLEAR_ADMIN_COOKIE).send()
    })
    registerApi(api, ctx)
  })
  await app.ready()
  if (handle === null) throw new Error('fastify did not call serverFactory')
  return { app, handle, sessions }
}

function csrfRefused(reply: FastifyReply): FastifyReply {
  return reply.code(403).send({ code: 'PL_ERR_ADMIN_CSRF', message: 'a state-changing dashboard request needs the page\'s CSRF token in the x-porchlight-csrf header' })
}

/** No Origin (not a browser, or a same-origin GET) or one naming this listener exactly. */
function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin
  if (origin === undefined) return true
  return origin === `http://${req.headers.host ?? ''}`
}

/** localhost or an IP literal (v4, or v6 in brackets), with any port. Names are what rebinding uses. */
export function adminHostAllowed(host: string | undefined): boolean {
  if (host === undefined) return false
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/i.exec(host)
  if (!m) return false
  if (m[1] !== undefined) return isIP(m[1]) === 6
  const name = m[2]!.toLowerCase()
  return name === 'localhost' || isIP(name) === 4
}
