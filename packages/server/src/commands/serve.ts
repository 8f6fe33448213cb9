import path from 'node:path'
import { loadRelayConfig } from '@porchlight/shared/config'
import { startupDone } from '@porchlight/shared/heap'
import { createLogger } from '@porchlight/shared/log'
import { buildRelay, loadClusterNode, type Relay } from '../relay.js'
import { installLifecycle } from '../lifecycle.js'
import { removeRunFileSync, runFilePath, writeRunFile, type RunFile } from './run-file.js'

/** `porchlight-relay serve -c relay.yaml`: load, build, listen, log ready, handle signals. */
export async function runServe(opts: { config: string; debug: boolean }): Promise<void> {
  const { config, warnings } = await loadRelayConfig(opts.config)
  const log = createLogger({ name: 'porchlight-relay', ...(opts.debug ? { level: 'debug' } : {}) })
  for (const w of warnings) log.warn(w)
  const relay = buildRelay(config, { log, ...(await loadClusterNode(config)) })
  const addresses = await relay.listen()
  const stateDir = config.state
  let run: RunFile | null = null
  // `agent add` waits for `reloads` to go up after its SIGHUP, so count the reloads that took.
  const watched: Relay = stateDir === null ? relay : Object.assign(Object.create(relay) as Relay, {
    reload(next: Parameters<Relay['reload']>[0]): void {
      relay.reload(next)
      if (run !== null) {
        run = { ...run, reloads: run.reloads + 1 }
        writeRunFile(stateDir, run).catch((err: unknown) => log.warn({ err }, 'cannot update the run file'))
      }
    },
  })
  // Signals first: whoever reads the ready line may send SIGTERM at once (it raced here once).
  installLifecycle({ relay: watched, log, configFile: opts.config })
  if (stateDir !== null) {
    const written: RunFile = { pid: process.pid, config: path.resolve(opts.config), started_at: new Date().toISOString(), reloads: 0, agents: addresses.agents, public: addresses.public, admin: addresses.admin }
    try {
      await writeRunFile(stateDir, written)
      run = written
      process.once('exit', () => removeRunFileSync(stateDir, process.pid))
    } catch (err) {
      log.warn({ err, file: runFilePath(stateDir) }, 'cannot write the run file; `agent add` will not find this relay to reload it')
    }
  }
  log.info({ ...addresses, domain: config.domain, agents_configured: Object.keys(config.agents).length }, 'ready')
  startupDone()
}
