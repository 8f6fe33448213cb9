import { PorchlightError } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import { hashPassword } from '@porchlight/shared/pki'
import type { CliIo } from '../cli-io.js'
import { parseDurationMs } from '../duration.js'
import { randomTunnelName } from '../names.js'
import { parseHttpTarget } from './args.js'
import { agentConfigPath } from '../settings.js'
import { buildQuickConfig, type QuickCommandFlags } from './quick.js'
import { runAgent, type RunAgentOptions } from './run-agent.js'

export interface HttpCommandFlags extends QuickCommandFlags {
  name?: string | undefined
  hostHeader?: string | undefined
  /** `--basic-auth USER:PASS`: visitors must log in (the password is hashed here, never sent). */
  basicAuth?: string | undefined
  /** `--allow-ip CIDR`, repeatable: only these visitor addresses get in. */
  allowIp?: string[] | undefined
  /** `--link`: share links let visitors in; one is printed at once. */
  link?: boolean | undefined
  /** `--expires 2h`: lifetime of the printed link (only with --link). */
  expires?: string | undefined
}

/** The relay caps a share link's lifetime at 365 days. */
const MAX_LINK_MS = 365 * 24 * 3_600_000
const DEFAULT_LINK_MS = 24 * 3_600_000

/**
 * `porchlight http PORT|URL [--name N] [--host-header H] [--basic-auth U:P] [--allow-ip CIDR]...
 * [--link [--expires 2h]]`: quick share of one local site. Without --name the relay picks a free
 * random name inside the agent's policy. The access flags build the same `access:` rules as
 * agent.yaml and go through the same validation.
 */
export async function runHttp(target: string, flags: HttpCommandFlags, log: Logger, io: CliIo, view?: RunAgentOptions['view']): Promise<number> {
  const to = parseHttpTarget(target)
  const access = await accessFromFlags(flags)
  const name = flags.name ?? randomTunnelName()
  const tunnel: Record<string, unknown> = { http: name, to, host_header: flags.hostHeader ?? null, ...(access !== null ? { access } : {}) }
  const config = await buildQuickConfig(flags, tunnel, log)
  const id = config.tunnels[0]?.id
  return runAgent({
    config,
    log,
    io,
    debug: flags.debug === true,
    quick: true,
    configFile: agentConfigPath(flags.config),
    ...(flags.name === undefined && id !== undefined ? { relayPicksName: new Set([id]) } : {}),
    ...(view !== undefined ? { view } : {}),
    ...(flags.link === true ? { shareLink: { expiresMs: linkLifetimeMs(flags.expires) } } : {}),
  })
}

/** agent.yaml `access:` from the flags, or null when none is given. Bad values are usage errors (exit 2). */
export async function accessFromFlags(flags: Pick<HttpCommandFlags, 'basicAuth' | 'allowIp' | 'link' | 'expires'>): Promise<Record<string, unknown> | null> {
  if (flags.expires !== undefined && flags.link !== true) throw new PorchlightError('PL_ERR_USAGE', ['--expires needs --link'])
  const access: Record<string, unknown> = {}
  if (flags.basicAuth !== undefined) {
    const colon = flags.basicAuth.indexOf(':')
    const user = colon > 0 ? flags.basicAuth.slice(0, colon) : ''
    const password = colon > 0 ? flags.basicAuth.slice(colon + 1) : ''
    if (user === '' || password === '') throw new PorchlightError('PL_ERR_USAGE', ['--basic-auth must be USER:PASSWORD, both non-empty'])
    access['basic'] = { user, password_hash: await hashPassword(password) }
  }
  if (flags.allowIp !== undefined && flags.allowIp.length > 0) access['allow_ips'] = [...flags.allowIp]
  if (flags.link === true) access['links'] = true
  return Object.keys(access).length === 0 ? null : access
}

function linkLifetimeMs(expires: string | undefined): number {
  if (expires === undefined) return DEFAULT_LINK_MS
  let ms: number
  try {
    ms = parseDurationMs(expires)
  } catch (err) {
    throw new PorchlightError('PL_ERR_USAGE', [`--expires: ${(err as Error).message}`])
  }
  if (ms > MAX_LINK_MS) throw new PorchlightError('PL_ERR_USAGE', ['--expires: at most 365d'])
  return ms
}
