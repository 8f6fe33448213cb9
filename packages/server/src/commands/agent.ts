import { loadRelayConfig, normalizeHostPattern, normalizeOutboundEntry, parsePortRange, formatPortRange, AGENT_NAME, type RelayConfig } from '@porchlight/shared/config'
import { addAgentEntry, allowAgentEntry, encodeEnrolmentCode, removeAgentEntry, type AgentGrant } from '@porchlight/shared/enrol'
import { PorchlightError } from '@porchlight/shared/errors'
import { newToken, sha256Hex } from '@porchlight/shared/secrets'
import { agentsCaFingerprint, findRunningRelay, readRelayText, reloadRunningRelay, stageRelayConfig, writeRelayConfigChecked } from './relay-edit.js'

/** stdout carries the result (the login line, the table); stderr what happened on the way. */
export interface AgentIo {
  out(line: string): void
  err(line: string): void
}

export interface AgentGrantFlags {
  hosts?: string[]
  tcpPorts?: string[]
  outbound?: string[]
}

export interface AgentAddOptions extends AgentGrantFlags {
  config: string
  name: string
  /** Issue a client certificate, put it in the code, and set require_cert. */
  cert?: boolean
  days?: number
  /** The URL agents dial, when it is not wss://DOMAIN:PORT from relay.yaml (NAT, another name). */
  relayUrl?: string
}

/**
 * `porchlight-relay agent add NAME`: a fresh token (only its sha256 goes into relay.yaml), the
 * policy entry written in place, the running relay reloaded, and one line for the laptop:
 * `porchlight login <code>`.
 */
export async function runAgentAdd(opts: AgentAddOptions, io: AgentIo): Promise<{ code: string; token: string }> {
  checkName(opts.name)
  const { config } = await loadRelayConfig(opts.config)
  if (config.agents[opts.name] !== undefined) throw new PorchlightError('PL_ERR_CONFIG_AGENT_EXISTS', [opts.name, opts.config])
  const grant = parseGrant(opts)
  const hosts = grant.hosts ?? [`*.${opts.name}.${config.domain}`]
  // Shared (agents on the visitors' HTTPS port): client certificates need only pki, and the relay
  // presents the public_tls certificate (usually from a public CA the system trusts), so nothing is pinned.
  const shared = config.listen.agents === 'shared'
  if (opts.cert === true && ((config.tls === null && !shared) || config.pki === null)) {
    throw new PorchlightError('PL_ERR_USAGE', [`--cert needs tls: and pki: in ${opts.config} (porchlight-relay init sets both)`])
  }
  const relay = await relayUrlFor(config, opts)
  const caSha256 = config.tls === null || shared ? null : await agentsCaFingerprint(config)

  const token = newToken()
  const before = await readRelayText(opts.config)
  const text = addAgentEntry(before, opts.config, opts.name, {
    token_sha256: sha256Hex(token),
    require_cert: opts.cert === true,
    hosts,
    tcp_ports: grant.tcp_ports ?? [],
    outbound: grant.outbound ?? [],
  }, `added by porchlight-relay agent add on ${new Date().toISOString().slice(0, 10)}`)
  // Checked before the certificate is issued: a config that would not load issues nothing.
  const staged = await stageRelayConfig(opts.config, text)
  let clientCert: { cert: string; key: string } | null = null
  let serial: string | null = null
  try {
    if (opts.cert === true) {
      const { issueClientCert, parseBundle } = await import('@porchlight/shared/pki')
      const issued = await issueClientCert({ dir: config.pki!, name: opts.name, days: opts.days ?? 365 })
      const bundle = parseBundle(issued.pemBundle)
      clientCert = { cert: bundle.cert, key: bundle.key }
      serial = issued.serial
    }
    await staged.commit()
  } catch (err) {
    await staged.discard()
    throw err
  }
  const written = staged.config
  io.err(`added agent ${opts.name} to ${opts.config}: ${describePolicy(written, opts.name)}`)
  if (serial !== null) io.err(`issued its client certificate (serial ${serial}); the relay requires it`)
  await reloadRunningRelay(written, opts.config, (l) => io.err(l))
  const code = encodeEnrolmentCode({ relay, agent: opts.name, token, caSha256, clientCert })
  io.err(`on ${opts.name}, run this line (it holds the agent's ${clientCert ? 'token and private key' : 'token'}: send it over a safe channel; it is shown only once):`)
  io.out(`porchlight login ${code}`)
  return { code, token }
}

/** `porchlight-relay agent list`: NAME, HOSTS, TCP PORTS, OUTBOUND, CERT. */
export async function runAgentList(opts: { config: string }, io: AgentIo): Promise<void> {
  const { config } = await loadRelayConfig(opts.config)
  const names = Object.keys(config.agents)
  if (names.length === 0) {
    io.out(`no agents in ${opts.config} (porchlight-relay agent add NAME)`)
    return
  }
  const running = await findRunningRelay(config, opts.config)
  const rows = [['NAME', 'HOSTS', 'TCP PORTS', 'OUTBOUND', 'CERT']]
  for (const name of names) {
    const a = config.agents[name]!
    rows.push([name, list(a.hosts), list(a.tcp_ports.map(formatPortRange)), list(a.outbound), a.require_cert ? 'required' : 'no'])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  for (const row of rows) io.out(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
  io.err(running === null ? 'no relay is running for this config' : `relay running (pid ${running.pid}); porchlight-relay's admin API /api/agents shows who is connected`)
}

/** `porchlight-relay agent remove NAME`: out of relay.yaml, its certificates revoked, relay reloaded. */
export async function runAgentRemove(opts: { config: string; name: string }, io: AgentIo): Promise<void> {
  checkName(opts.name)
  const { config: before } = await loadRelayConfig(opts.config)
  const text = removeAgentEntry(await readRelayText(opts.config), opts.config, opts.name)
  const written = await writeRelayConfigChecked(opts.config, text)
  io.out(`removed agent ${opts.name} from ${opts.config}; its token no longer works`)
  if (before.pki !== null) {
    const { listCerts, revokeCert } = await import('@porchlight/shared/pki')
    const live = (await listCerts(before.pki).catch(() => [])).filter((c) => c.name === opts.name && !c.revoked)
    if (live.length > 0) {
      const serials = await revokeCert({ dir: before.pki, nameOrSerial: opts.name })
      io.out(`revoked its certificate${serials.length === 1 ? '' : 's'} ${serials.join(', ')}`)
    }
  }
  await reloadRunningRelay(written, opts.config, (l) => io.err(l))
}

/** `porchlight-relay agent allow NAME --hosts … --tcp-ports … --outbound …`: widens a policy. */
export async function runAgentAllow(opts: AgentGrantFlags & { config: string; name: string }, io: AgentIo): Promise<AgentGrant> {
  checkName(opts.name)
  const grant = parseGrant(opts)
  if (grant.hosts === undefined && grant.tcp_ports === undefined && grant.outbound === undefined) {
    throw new PorchlightError('PL_ERR_USAGE', ['agent allow needs --hosts, --tcp-ports or --outbound'])
  }
  const { text, added } = allowAgentEntry(await readRelayText(opts.config), opts.config, opts.name, grant)
  if (Object.keys(added).length === 0) {
    io.out(`agent ${opts.name} already has all of that; nothing changed`)
    return added
  }
  const written = await writeRelayConfigChecked(opts.config, text)
  io.out(`agent ${opts.name} now: ${describePolicy(written, opts.name)}`)
  await reloadRunningRelay(written, opts.config, (l) => io.err(l))
  return added
}

function checkName(name: string): void {
  if (!AGENT_NAME.test(name)) {
    throw new PorchlightError('PL_ERR_USAGE', [`invalid agent name ${JSON.stringify(name.slice(0, 80))}: 1-63 lowercase letters, digits, "-" or "_", starting with a letter or digit`])
  }
}

/** Flag values checked one by one, so a typo is a usage error naming the flag and the entry. */
function parseGrant(flags: AgentGrantFlags): AgentGrant {
  const grant: AgentGrant = {}
  const each = <T>(flag: string, values: string[] | undefined, parse: (v: string) => T): T[] | undefined =>
    values === undefined ? undefined : values.map((v) => {
      try {
        return parse(v)
      } catch (err) {
        throw new PorchlightError('PL_ERR_USAGE', [`${flag} ${JSON.stringify(v)}: ${(err as Error).message}`])
      }
    })
  const hosts = each('--hosts', flags.hosts, (v) => {
    const pattern = normalizeHostPattern(v)
    if (pattern === null) throw new Error('not a hostname or "*." pattern')
    return pattern
  })
  const ports = each('--tcp-ports', flags.tcpPorts, (v) => {
    const range = parsePortRange(/^\d+$/.test(v) ? Number(v) : v)
    return range.from === range.to ? range.from : `${range.from}-${range.to}`
  })
  const outbound = each('--outbound', flags.outbound, (v) => normalizeOutboundEntry(v))
  if (hosts !== undefined) grant.hosts = hosts
  if (ports !== undefined) grant.tcp_ports = ports
  if (outbound !== undefined) grant.outbound = outbound
  return grant
}

/** wss://DOMAIN:PORT from relay.yaml (the port the running relay bound when the config says 0). */
async function relayUrlFor(config: RelayConfig, opts: AgentAddOptions): Promise<string> {
  if (opts.relayUrl !== undefined) {
    let url: URL
    try {
      url = new URL(opts.relayUrl)
    } catch {
      throw new PorchlightError('PL_ERR_USAGE', [`--relay-url ${JSON.stringify(opts.relayUrl)} is not a URL (e.g. wss://tunnel.example.com:7443)`])
    }
    if (url.protocol !== 'wss:' && url.protocol !== 'ws:') throw new PorchlightError('PL_ERR_USAGE', ['--relay-url must be ws:// or wss://'])
    return opts.relayUrl.replace(/\/+$/, '')
  }
  // Shared: agents dial the visitors' HTTPS port (443 is left out of the URL), the default path.
  const shared = config.listen.agents === 'shared'
  const listener = config.listen.agents === 'shared' ? config.listen.public_tls?.address : config.listen.agents
  let port = listener?.port ?? 0
  if (port === 0) {
    const run = await findRunningRelay(config, opts.config)
    port = run === null ? 0 : Number(/:(\d+)$/.exec(run.agents)?.[1] ?? 0)
    if (port === 0) throw new PorchlightError('PL_ERR_USAGE', [`${shared ? 'listen.public_tls.address' : 'listen.agents'} has port 0 and no running relay says which port it bound; start the relay first or pass --relay-url`])
  }
  if (shared) return `wss://${config.domain}${port === 443 ? '' : `:${port}`}`
  return `${config.tls === null ? 'ws' : 'wss'}://${config.domain}:${port}`
}

function describePolicy(config: RelayConfig, name: string): string {
  const a = config.agents[name]
  if (a === undefined) return '(gone)'
  const parts = [`hosts ${list(a.hosts)}`]
  if (a.tcp_ports.length > 0) parts.push(`tcp ports ${list(a.tcp_ports.map(formatPortRange))}`)
  if (a.outbound.length > 0) parts.push(`outbound ${list(a.outbound)}`)
  if (a.require_cert) parts.push('client certificate required')
  return parts.join('; ')
}

function list(values: string[]): string {
  return values.length === 0 ? '-' : values.join(',')
}
