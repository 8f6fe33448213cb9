import { homedir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { loadAgentConfig, type Address, type AgentConfig, type Loaded } from '@porchlight/shared/config'
import { PorchlightError, isPorchlightError } from '@porchlight/shared/errors'
import { fileExists } from '@porchlight/shared/fs'

/** Where the status API listens when no config says otherwise. */
export const DEFAULT_INSPECT: Readonly<Address> = Object.freeze({ host: '127.0.0.1', port: 4040 })

export type SettingSource = 'flag' | 'env' | 'config'

/** Relay connection settings for quick modes (`porchlight http|tcp|forward`). */
export interface QuickSettings {
  relay: string
  token: string
  cert: string | null
  ca: string | null
  inspect: Address | null
  /** agent.yaml `proxy:` (null: the environment's HTTPS_PROXY / HTTP_PROXY). */
  proxy: string | false | null
  /** The config file that was read, or null when none exists. */
  configFile: string | null
  sources: { relay: SettingSource; token: SettingSource }
  warnings: string[]
}

export interface QuickFlags {
  relay?: string | undefined
  token?: string | undefined
  cert?: string | undefined
  /** `-c FILE`: an explicit config file (must exist). */
  config?: string | undefined
}

export interface SettingsDeps {
  env?: NodeJS.ProcessEnv
  homeDir?: string
  cwd?: string
  loadConfig?: (file: string, env?: NodeJS.ProcessEnv) => Promise<Loaded<AgentConfig>>
}

/** PORCHLIGHT_CONFIG, else $XDG_CONFIG_HOME/porchlight/agent.yaml, else ~/.config/porchlight/agent.yaml. */
export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env, homeDir: string = homedir()): string {
  const explicit = env['PORCHLIGHT_CONFIG']
  if (explicit !== undefined && explicit !== '') return resolve(explicit)
  const xdg = env['XDG_CONFIG_HOME']
  const base = xdg !== undefined && isAbsolute(xdg) ? xdg : join(homeDir, '.config')
  return join(base, 'porchlight', 'agent.yaml')
}

/**
 * The config file a command with `-c FLAG` runs (or would read): `-c` resolved, else the default.
 * An agent records it in its runtime file and `status` / `link` look for the same path.
 */
export function agentConfigPath(configFlag: string | undefined, deps: Pick<SettingsDeps, 'env' | 'homeDir' | 'cwd'> = {}): string {
  return configFlag !== undefined ? resolve(deps.cwd ?? process.cwd(), configFlag) : defaultConfigPath(deps.env ?? process.env, deps.homeDir)
}

/**
 * Quick-mode precedence, per setting: flags > PORCHLIGHT_RELAY / PORCHLIGHT_TOKEN > the config
 * file (`-c`, else PORCHLIGHT_CONFIG, else ~/.config/porchlight/agent.yaml). cert, ca and inspect
 * come from the file (cert may also be a flag). A missing default file is fine; a missing `-c` file
 * or a broken file is an error.
 */
export async function resolveQuickSettings(flags: QuickFlags, deps: SettingsDeps = {}): Promise<QuickSettings> {
  const env = deps.env ?? process.env
  const cwd = deps.cwd ?? process.cwd()
  const file = agentConfigPath(flags.config, deps)
  const mustExist = flags.config !== undefined || nonEmpty(env['PORCHLIGHT_CONFIG']) !== undefined

  const relayFlag = nonEmpty(flags.relay)
  const tokenFlag = nonEmpty(flags.token)
  const relayEnv = nonEmpty(env['PORCHLIGHT_RELAY'])
  const tokenEnv = nonEmpty(env['PORCHLIGHT_TOKEN'])

  let loaded: Loaded<AgentConfig> | null = null
  if (mustExist || (await fileExists(file))) {
    loaded = await (deps.loadConfig ?? loadAgentConfig)(file, env)
  }
  const fromFile = loaded?.config ?? null

  const relay = pick(relayFlag, relayEnv, fromFile?.relay)
  const token = pick(tokenFlag, tokenEnv, fromFile?.token)
  if (relay === null) {
    throw new PorchlightError('PL_ERR_USAGE', [`no relay given: pass --relay URL, set PORCHLIGHT_RELAY, or write ${file}`])
  }
  if (token === null) {
    throw new PorchlightError('PL_ERR_USAGE', [`no agent token given: pass --token T, set PORCHLIGHT_TOKEN, or write ${file}`])
  }
  const certFlag = nonEmpty(flags.cert)
  return {
    relay: relay.value,
    token: token.value,
    cert: certFlag !== undefined ? resolve(cwd, certFlag) : fromFile?.cert ?? null,
    ca: fromFile?.ca ?? null,
    inspect: fromFile ? fromFile.inspect : { ...DEFAULT_INSPECT },
    proxy: fromFile?.proxy ?? null,
    configFile: loaded ? file : null,
    sources: { relay: relay.source, token: token.source },
    warnings: loaded?.warnings ?? [],
  }
}

/**
 * The status API address for `porchlight status` / `link`: from `-c FILE` (or the default file
 * when it exists), else 127.0.0.1:4040. Only `inspect` is needed, so secrets the caller cannot
 * read (a root-owned token file, an env var set only for the service) must not make this fail:
 * `env:` secrets get a placeholder value here and are never used.
 */
export async function resolveInspectAddress(configFlag: string | undefined, deps: SettingsDeps = {}): Promise<Address> {
  const env = deps.env ?? process.env
  const file = agentConfigPath(configFlag, deps)
  const mustExist = configFlag !== undefined || nonEmpty(env['PORCHLIGHT_CONFIG']) !== undefined
  if (!mustExist && !(await fileExists(file))) return { ...DEFAULT_INSPECT }
  const placeholderEnv = new Proxy(env, { get: (target, key) => (typeof key === 'string' ? target[key] ?? INSPECT_ONLY_PLACEHOLDER : undefined) })
  let config: AgentConfig
  try {
    config = (await (deps.loadConfig ?? loadAgentConfig)(file, placeholderEnv)).config
  } catch (err) {
    // An unreadable `file:` token says nothing about where the agent listens: fall back to the default.
    if (isPorchlightError(err) && err.code === 'PL_ERR_CONFIG_SECRET') return { ...DEFAULT_INSPECT }
    throw err
  }
  if (config.inspect === null) {
    throw new PorchlightError('PL_ERR_USAGE', [`inspect is disabled in ${file} (inspect: false), so the running agent cannot be queried`])
  }
  return config.inspect
}

/** Looks like a strong token so strength checks pass; never sent anywhere. */
const INSPECT_ONLY_PLACEHOLDER = 'inspect-only-placeholder-token-0000000000000000'

function pick(flag: string | undefined, env: string | undefined, file: string | undefined): { value: string; source: SettingSource } | null {
  if (flag !== undefined) return { value: flag, source: 'flag' }
  if (env !== undefined) return { value: env, source: 'env' }
  if (file !== undefined && file !== '') return { value: file, source: 'config' }
  return null
}

function nonEmpty(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  return trimmed === '' ? undefined : trimmed
}
