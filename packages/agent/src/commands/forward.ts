import type { Logger } from '@porchlight/shared/log'
import type { CliIo } from '../cli-io.js'
import { parseDestinationArg, parseLocalArg } from './args.js'
import { agentConfigPath } from '../settings.js'
import { buildQuickConfig, type QuickCommandFlags } from './quick.js'
import { runAgent } from './run-agent.js'

/** `porchlight forward LOCALPORT HOST:PORT`: laptop port -> relay -> HOST:PORT (relay policy decides). */
export async function runForward(local: string, destination: string, flags: QuickCommandFlags, log: Logger, io: CliIo): Promise<number> {
  const forward = parseLocalArg(local, 'LOCALPORT')
  const to = parseDestinationArg(destination)
  const config = await buildQuickConfig(flags, { forward, to }, log)
  return runAgent({ config, log, io, debug: flags.debug === true, quick: true, configFile: agentConfigPath(flags.config) })
}
