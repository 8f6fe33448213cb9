import { loadRelayConfig } from '@porchlight/shared/config'
import { createLogger } from '@porchlight/shared/log'
import { buildRelay } from '../relay.js'
import { installLifecycle } from '../lifecycle.js'

/** `porchlight-relay serve -c relay.yaml`: load, build, listen, log ready, handle signals. */
export async function runServe(opts: { config: string; debug: boolean }): Promise<void> {
  const { config, warnings } = await loadRelayConfig(opts.config)
  const log = createLogger({ name: 'porchlight-relay', ...(opts.debug ? { level: 'debug' } : {}) })
  for (const w of warnings) log.warn(w)
  if (config.acme) {
    // Accepted so configs stay forward-compatible, but not implemented yet: say so loudly.
    log.warn({ directory: config.acme.directory }, 'acme: automatic certificates are not implemented in this version; use listen.public_tls.certs')
  }
  const relay = buildRelay(config, { log })
  const addresses = await relay.listen()
  // Signals first: whoever reads the ready line may send SIGTERM at once (it raced here once).
  installLifecycle({ relay, log, configFile: opts.config })
  log.info({ ...addresses, domain: config.domain, agents_configured: Object.keys(config.agents).length }, 'ready')
}
