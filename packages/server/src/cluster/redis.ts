import { Redis } from 'ioredis'
import type { Logger } from '@porchlight/shared/log'

/** Redis answers within this long or the command fails (a blackholed Redis must not hang anything). */
export const REDIS_COMMAND_TIMEOUT_MS = 1_000

/**
 * A Redis client with every wait bounded: no offline queue (a command while disconnected fails
 * at once, loudly), one attempt per command, reconnects every second at most. `blocking` clients
 * serve XREAD BLOCK and get no command timeout of their own (the BLOCK argument bounds them).
 */
export function connectRedis(url: string, log: Logger, opts: { name: string; blocking?: boolean }): Redis {
  const client = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Connecting may take longer than a command on a loaded machine; a blackholed Redis still fails within 2 s.
    connectTimeout: 2 * REDIS_COMMAND_TIMEOUT_MS,
    ...(opts.blocking === true ? {} : { commandTimeout: REDIS_COMMAND_TIMEOUT_MS }),
    retryStrategy: (attempt: number) => Math.min(100 * attempt, 1_000),
    connectionName: `porchlight-${opts.name}`,
  })
  let lastProblem: string | null = null
  client.on('error', (err: Error) => {
    // Said once per distinct problem; the reconnect loop would repeat it every second.
    if (err.message === lastProblem) return
    lastProblem = err.message
    log.warn({ code: 'PL_ERR_CLUSTER_REDIS', client: opts.name, err: { message: err.message } }, 'redis unavailable')
  })
  client.on('ready', () => {
    if (lastProblem !== null) log.info({ client: opts.name }, 'redis reachable again')
    lastProblem = null
  })
  return client
}
