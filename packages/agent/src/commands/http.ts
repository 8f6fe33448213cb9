import type { Logger } from '@porchlight/shared/log'
import type { CliIo } from '../cli-io.js'
import { randomTunnelName } from '../names.js'
import { parseHttpTarget } from './args.js'
import { buildQuickConfig, type QuickCommandFlags } from './quick.js'
import { runAgent } from './run-agent.js'

export interface HttpCommandFlags extends QuickCommandFlags {
  name?: string | undefined
  hostHeader?: string | undefined
}

/** `porchlight http PORT|URL [--name N] [--host-header H]`: quick share of one local site. */
export async function runHttp(target: string, flags: HttpCommandFlags, log: Logger, io: CliIo): Promise<number> {
  const to = parseHttpTarget(target)
  const tunnel: Record<string, unknown> = { http: flags.name ?? randomTunnelName(), to, host_header: flags.hostHeader ?? null }
  const config = await buildQuickConfig(flags, tunnel, log)
  return runAgent({ config, log, io, debug: flags.debug === true, quick: true })
}
