import type { FastifyInstance } from 'fastify'
import { PorchlightError, isPorchlightError } from '@porchlight/shared/errors'
import type { RelayContext } from '../context.js'

/** The certificate store loads node-forge (~10 MiB of RSS): only when the certificates API is called. */
const pkiStore = () => import('@porchlight/shared/pki')

/** Access-log entries the API hands out (the ring holds more for nobody; see Activity). */
const ACCESS_LOG_PAGE = 200
const SERIAL = /^[0-9a-f]{1,64}$/i

/**
 * The JSON API behind the dashboard (also for scripts, with the Bearer token). Registered inside
 * the authenticated scope of buildAdmin; nothing here checks credentials itself.
 */
export function registerApi(api: FastifyInstance, ctx: RelayContext): void {
  api.get('/api/agents', async () =>
    ctx.registry.allSessions().map((s) => ({
      name: s.agent,
      session: s.id,
      instance: s.instance,
      certSerial: s.certSerial,
      connectedAt: s.connectedAt.toISOString(),
      streams: s.mux.streamCount,
      tunnels: s.results.map((r) => {
        const spec = s.tunnels.find((t) => t.id === r.id)
        // Several processes of one agent hold sessions side by side: only this session's routes.
        const route = ctx.registry.routesOf(s.agent).find((x) => x.session === s && x.tunnelId === r.id)
        return { id: r.id, kind: spec?.kind ?? 'http', ok: r.ok, ...(r.ok ? { url: r.url } : { code: r.code }), ...(route ? { host: route.host } : {}) }
      }),
    })),
  )

  /** Closes the agent's sessions (or one, `{ session }`); the agent reconnects with its backoff. */
  api.post<{ Params: { name: string }; Body: { session?: unknown } | undefined }>('/api/agents/:name/disconnect', async (req, reply) => {
    const only = typeof req.body?.session === 'string' ? req.body.session : null
    const targets = ctx.registry.allSessions().filter((s) => s.agent === req.params.name && (only === null || s.id === only))
    if (targets.length === 0) return reply.code(404).send({ code: 'PL_ERR_NOT_FOUND', message: new PorchlightError('PL_ERR_NOT_FOUND', [`agent session ${req.params.name}`]).message })
    for (const s of targets) {
      ctx.log.warn({ component: 'admin', agent: s.agent, session: s.id }, 'agent disconnected by the operator')
      s.close(new PorchlightError('PL_ERR_ADMIN_DISCONNECTED'), { code: 'PL_ERR_ADMIN_DISCONNECTED', message: 'disconnected by the relay operator' })
    }
    return { disconnected: targets.map((s) => s.id) }
  })

  api.get('/api/links', async () => ctx.links.list())
  api.post<{ Params: { id: string } }>('/api/links/:id/revoke', async (req, reply) => {
    if (!ctx.links.revoke(req.params.id)) return reply.code(404).send({ code: 'PL_ERR_NOT_FOUND', message: new PorchlightError('PL_ERR_NOT_FOUND', [`share link ${req.params.id.slice(0, 64)}`]).message })
    ctx.log.info({ component: 'admin', link: req.params.id }, 'share link revoked by the operator')
    return { revoked: req.params.id }
  })

  /** Issued certificates and whether each is revoked (pki/issued.json and revoked.json). */
  api.get('/api/certs', async () => {
    const pki = ctx.config.pki
    if (!pki) return { pki: false, certs: [] }
    return { pki: true, certs: await (await pkiStore()).listCerts(pki) }
  })
  /** Revokes one certificate by serial; the revocation watcher cuts a connected agent off within a second or two. */
  api.post<{ Params: { serial: string } }>('/api/certs/:serial/revoke', async (req, reply) => {
    const pki = ctx.config.pki
    const serial = req.params.serial
    if (!pki || !SERIAL.test(serial)) return reply.code(404).send({ code: 'PL_ERR_NOT_FOUND', message: new PorchlightError('PL_ERR_NOT_FOUND', [`certificate ${serial.slice(0, 64)}`]).message })
    try {
      const serials = await (await pkiStore()).revokeCert({ dir: pki, nameOrSerial: serial })
      ctx.log.warn({ component: 'admin', serial }, 'certificate revoked by the operator')
      return { revoked: serials }
    } catch (err) {
      if (isPorchlightError(err) && err.code === 'PL_ERR_PKI_UNKNOWN_CERT') return reply.code(404).send({ code: err.code, message: err.message })
      throw err
    }
  })

  api.get('/api/traffic', async () => {
    const now = Date.now()
    return { minutes: ctx.activity.traffic.minutes, now, hosts: ctx.activity.traffic.series(now) }
  })
  api.get('/api/access-log', async () => ctx.activity.accessLog.newest(ACCESS_LOG_PAGE))
}
