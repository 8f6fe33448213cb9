import { resolve } from 'node:path'
import { loadAgentConfig, type AgentConfig } from '@porchlight/shared/config'
import type { Logger } from '@porchlight/shared/log'
import type { CliIo } from '../cli-io.js'
import { defaultConfigPath } from '../settings.js'
import { runAgent, type RunAgentOptions } from './run-agent.js'

/** `porchlight up [-c agent.yaml]`: every tunnel of the config; SIGHUP re-reads the file. */
export async function runUp(options: { config?: string | undefined; debug: boolean; view?: RunAgentOptions['view'] }, log: Logger, io: CliIo): Promise<number> {
  const file = options.config !== undefined ? resolve(options.config) : defaultConfigPath()
  const load = async (): Promise<AgentConfig> => {
    const { config, warnings } = await loadAgentConfig(file)
    for (const warning of warnings) log.warn({ file }, warning)
    return config
  }
  const config = await load()
  log.info({ file, relay: config.relay, tunnels: config.tunnels.length }, 'starting agent')
  return runAgent({ config, log, io, debug: options.debug, quick: false, reload: load, configFile: file, ...(options.view !== undefined ? { view: options.view } : {}) })
}
