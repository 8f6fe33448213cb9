import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import type { RelayContext } from '../context.js'
import type { AdminApp } from './plugin.js'

/** What the admin listener had as fastify's own server: its request timeout and keep-alive default. */
export const ADMIN_REQUEST_TIMEOUT_MS = 10_000
const ADMIN_KEEP_ALIVE_TIMEOUT_MS = 72_000

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void

/**
 * The admin listener binds at start, but fastify, its schema compiler and the dashboard (about 150
 * modules, 8.5 MiB of idle RSS) load at its first request: many relays are never browsed or scraped,
 * and the first request waits once for the build (tens of ms).
 *
 * Requests that arrive during the build wait for it with their bodies unread; then fastify's
 * handler takes the server's 'request' event directly.
 */
export class LazyAdminServer {
  readonly server: http.Server
  private app: Promise<AdminApp> | null = null

  constructor(private readonly ctx: RelayContext) {
    this.server = http.createServer({ requestTimeout: ADMIN_REQUEST_TIMEOUT_MS })
    this.server.keepAliveTimeout = ADMIN_KEEP_ALIVE_TIMEOUT_MS
    this.server.on('request', this.beforeBuilt)
  }

  /** True once the first request made fastify load (tests check that an idle relay never did). */
  get loaded(): boolean {
    return this.app !== null
  }

  private readonly beforeBuilt: RequestListener = (req, res) => {
    this.build().then(
      (app) => { app.handle(req, res) },
      (err: unknown) => {
        this.ctx.log.error({ component: 'admin', err }, 'admin API failed to start')
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'PL_ERR_INTERNAL', message: 'admin API failed to start' }))
      },
    )
  }

  private build(): Promise<AdminApp> {
    this.app ??= import('./plugin.js').then(({ buildAdmin }) => buildAdmin(this.ctx, this.server)).then((app) => {
      this.server.off('request', this.beforeBuilt)
      this.server.on('request', app.handle)
      return app
    })
    return this.app
  }

  /** Stops the listener and, if it was built, fastify (its onClose hooks). */
  async close(): Promise<void> {
    this.server.close()
    const app = await this.app?.catch(() => null)
    await app?.app.close()
  }
}
