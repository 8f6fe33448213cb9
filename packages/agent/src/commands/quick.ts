import { formatAddress, parseAgentConfig, type AgentConfig } from '@porchlight/shared/config'
import type { Logger } from '@porchlight/shared/log'
import { resolveQuickSettings, type QuickFlags, type SettingsDeps } from '../settings.js'

/** Flags shared by `porchlight http|tcp|forward`. */
export interface QuickCommandFlags extends QuickFlags {
  debug?: boolean
}

/**
 * The AgentConfig of a quick mode: relay settings from flags > env > config file, plus the one
 * tunnel built from the command line. It goes through the same validation as agent.yaml, so a
 * bad value gets the same `path: message` error.
 */
export async function buildQuickConfig(flags: QuickFlags, tunnel: Record<string, unknown>, log: Logger, deps: SettingsDeps = {}): Promise<AgentConfig> {
  const settings = await resolveQuickSettings(flags, deps)
  for (const warning of settings.warnings) log.warn({ file: settings.configFile }, warning)
  log.debug({ relay: settings.relay, relaySource: settings.sources.relay, tokenSource: settings.sources.token, configFile: settings.configFile }, 'quick mode settings')
  const value: Record<string, unknown> = {
    relay: settings.relay,
    token: settings.token,
    inspect: settings.inspect === null ? false : formatAddress(settings.inspect),
    tunnels: [tunnel],
    ...(settings.cert !== null ? { cert: settings.cert } : {}),
    ...(settings.ca !== null ? { ca: settings.ca } : {}),
    ...(settings.proxy !== null ? { proxy: settings.proxy } : {}),
  }
  const { config, warnings } = parseAgentConfig(value, 'command line', deps.cwd ?? process.cwd(), deps.env ?? process.env)
  for (const warning of warnings) log.warn(warning)
  return config
}
