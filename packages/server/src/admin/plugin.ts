import Fastify, { type FastifyInstance } from 'fastify'
import type { Server } from 'node:http'
import { tokenMatchesHash } from '@porchlight/shared/secrets'
import type { RelayContext } from '../context.js'
import { DASHBOARD_HTML } from './dashboard.js'

export interface AdminApp {
  app: FastifyInstance
  server: Server
}

/**
 * The admin listener (loopback by default): /healthz, a JSON API and Prometheus /metrics behind
 * the admin bearer token, and a dashboard page that calls the API with a token the operator types.
 */
export async function buildAdmin(ctx: RelayContext): Promise<AdminApp> {
  const app = Fastify({ logger: false, requestTimeout: 10_000, bodyLimit: 64 * 1024 })

  app.get('/healthz', async () => ({ ok: true }))
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(DASHBOARD_HTML))

  await app.register(async (api) => {
    api.addHook('onRequest', async (req, reply) => {
      const expected = ctx.config.admin_token_sha256
      const m = /^Bearer (.{1,512})$/.exec(req.headers.authorization ?? '')
      if (!expected || !m || !tokenMatchesHash(m[1]!, expected)) {
        return reply.code(401).send({ code: 'PL_ERR_ADMIN_UNAUTHORIZED', message: 'admin token required' })
      }
    })
    api.get('/api/agents', async () =>
      ctx.registry.allSessions().map((s) => ({
        name: s.agent,
        session: s.id,
        // Several processes of one agent hold sessions side by side; each names its instance.
        instance: s.instance,
        connectedAt: s.connectedAt.toISOString(),
        streams: s.mux.streamCount,
        tunnels: s.results.map((r) => {
          const spec = s.tunnels.find((t) => t.id === r.id)
          const route = ctx.registry.routesOf(s.agent).find((x) => x.session === s && x.tunnelId === r.id)
          return { id: r.id, kind: spec?.kind ?? 'http', ok: r.ok, ...(r.ok ? { url: r.url } : { code: r.code }), ...(route ? { host: route.host } : {}) }
        }),
      })),
    )
    api.get('/metrics', async (_req, reply) => reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics()))
    api.get('/api/links', async () => ctx.links.list())
  })
  await app.ready()
  return { app, server: app.server }
}
