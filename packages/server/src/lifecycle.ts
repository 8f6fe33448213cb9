import { loadRelayConfig } from '@porchlight/shared/config'
import type { Logger } from '@porchlight/shared/log'
import type { Relay } from './relay.js'

const DRAIN_GRACE_MS = 10_000

/**
 * SIGHUP reloads relay.yaml (a bad file keeps the running config and logs why); SIGTERM/SIGINT
 * drain in-flight requests for up to 10 s; a second signal exits at once.
 */
export function installLifecycle(opts: { relay: Relay; log: Logger; configFile: string }): void {
  const { relay, log } = opts
  let stopping = false
  process.on('SIGHUP', () => {
    loadRelayConfig(opts.configFile)
      .then(({ config }) => relay.reload(config))
      .catch((err: unknown) => log.error({ err: { code: (err as { code?: string }).code, message: (err as Error).message } }, 'config reload failed; keeping the running config'))
  })
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal; exiting now')
      process.exit(1)
    }
    stopping = true
    log.info({ signal }, 'draining')
    relay.close(DRAIN_GRACE_MS).then(
      () => { log.info('stopped'); log.flush(); setTimeout(() => process.exit(0), 50) },
      (err: unknown) => { log.error({ err }, 'shutdown failed'); process.exit(1) },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('uncaughtException', (err) => {
    // Crash policy: an unexpected throw leaves state undefined; log it and let the supervisor restart us.
    log.fatal({ err }, 'uncaught exception')
    log.flush()
    process.exit(70)
  })
}
