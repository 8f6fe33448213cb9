import type { Logger } from '@porchlight/shared/log'
import type { CliIo } from '../cli-io.js'
import { parseLocalArg, parsePortArg } from './args.js'
import { agentConfigPath } from '../settings.js'
import { buildQuickConfig, type QuickCommandFlags } from './quick.js'
import { runAgent } from './run-agent.js'

export interface TcpCommandFlags extends QuickCommandFlags {
  remotePort?: string | undefined
}

/** `porchlight tcp PORT [--remote-port P]`: expose a local TCP port on a relay port. */
export async function runTcp(local: string, flags: TcpCommandFlags, log: Logger, io: CliIo): Promise<number> {
  const to = parseLocalArg(local, 'PORT')
  const remotePort = flags.remotePort === undefined ? 0 : parsePortArg(flags.remotePort, '--remote-port')
  const config = await buildQuickConfig(flags, { tcp: remotePort, to }, log)
  return runAgent({ config, log, io, debug: flags.debug === true, quick: true, configFile: agentConfigPath(flags.config) })
}
