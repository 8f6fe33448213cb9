import { execFileSync } from 'node:child_process'
import { chmod, chown, mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { networkInterfaces } from 'node:os'
import path from 'node:path'
import { formatAddress, isLoopbackHost, loadRelayConfig, normalizeHostname, parseAddress, RELAY_DEFAULTS } from '@porchlight/shared/config'
import { PorchlightError } from '@porchlight/shared/errors'
import { newToken, sha256Hex } from '@porchlight/shared/secrets'
import { DEFAULT_CONFIG_DIR, DEFAULT_DATA_DIR } from './relay-config.js'
import { fileExists } from '@porchlight/shared/fs'

type Print = (line: string) => void

export interface InitOptions {
  domain: string
  /** Where relay.yaml goes; default /etc/porchlight. */
  dir?: string
  /** Where pki/ and state/ go; default /var/lib/porchlight, or `dir` when `dir` is given. */
  data?: string
  listenPublic?: string
  listenAgents?: string
  listenAdmin?: string
  /**
   * When run as root: the system user the relay runs as, who must own the data directories and
   * be able to read relay.yaml. Default "porchlight" if that user exists.
   */
  user?: string
  /**
   * `--acme-email`: HTTPS on from the start: listen.public_tls on 0.0.0.0:443 without certificates,
   * acme with this contact address (challenge auto), redirect_http.
   */
  acmeEmail?: string
  /** `--acme-directory`: the CA's ACME directory (default Let's Encrypt); needs --acme-email. */
  acmeDirectory?: string
  /** `--agents-shared`: listen.agents: shared (agents on the HTTPS listener, 443); needs --acme-email. */
  agentsShared?: boolean
}

export interface InitResult {
  configFile: string
  pkiDir: string
  stateDir: string
  adminToken: string
}

/** The system user the packaged systemd unit runs the relay as. */
const SERVICE_USER = 'porchlight'

/**
 * `porchlight-relay init --domain D`: a relay.yaml that passes `check`, the relay's CA and the
 * agents listener's certificate, an admin token (printed once, only its hash stored), private
 * state and pki directories; then the DNS records and the next commands. Never replaces an
 * existing config or CA (PL_ERR_CONFIG_EXISTS): agents enrolled against them would be cut off.
 */
export async function runInit(opts: InitOptions, print: Print): Promise<InitResult> {
  const domain = normalizeHostname(opts.domain)
  if (domain === null || !domain.includes('.') && domain !== 'localhost') {
    throw new PorchlightError('PL_ERR_USAGE', [`--domain ${JSON.stringify(opts.domain)} is not a DNS name like tunnel.example.com`])
  }
  const listen = {
    public: address('--listen-public', opts.listenPublic ?? RELAY_DEFAULTS.listen.public),
    agents: address('--listen-agents', opts.listenAgents ?? RELAY_DEFAULTS.listen.agents),
    admin: address('--listen-admin', opts.listenAdmin ?? RELAY_DEFAULTS.listen.admin),
  }
  const https = httpsOptions(opts)
  if (https?.agentsShared && opts.listenAgents !== undefined) throw new PorchlightError('PL_ERR_USAGE', ['--agents-shared and --listen-agents: agents use the HTTPS listener with --agents-shared'])
  const dir = path.resolve(opts.dir ?? DEFAULT_CONFIG_DIR)
  const data = path.resolve(opts.data ?? (opts.dir !== undefined ? dir : DEFAULT_DATA_DIR))
  const configFile = path.join(dir, 'relay.yaml')
  const pkiDir = path.join(data, 'pki')
  const stateDir = path.join(data, 'state')
  for (const [file, why] of [
    [configFile, 'init never replaces a relay config; edit it, or choose another --dir'],
    [path.join(pkiDir, 'ca.key'), 'init never replaces a CA (agents trust it); choose another --data or --dir'],
  ] as const) {
    if (await fileExists(file)) throw new PorchlightError('PL_ERR_CONFIG_EXISTS', [file, why])
  }
  const owner = await serviceOwner(opts.user)

  await mkdir(dir, { recursive: true, mode: owner ? 0o750 : 0o700 })
  await mkdir(data, { recursive: true, mode: 0o700 })
  await mkdir(stateDir, { recursive: true, mode: 0o700 })
  await chmod(stateDir, 0o700)
  // node-forge only for init and the PKI commands (10 MB a serving relay never carries).
  const { initCa } = await import('@porchlight/shared/pki')
  const ca = await initCa({ dir: pkiDir, hostname: domain })

  const adminToken = newToken()
  const text = relayYaml({ domain, listen, https, pkiDir, stateDir, ca, adminTokenSha256: sha256Hex(adminToken), configFile })
  await writeFile(configFile, text, { mode: owner ? 0o640 : 0o600, flag: 'wx' })
  if (owner) {
    // The relay reads relay.yaml as its group and owns everything it writes; root keeps the config.
    await chown(configFile, 0, owner.gid)
    await chown(dir, 0, owner.gid)
    for (const p of [data, stateDir, pkiDir, ...(await readdir(pkiDir)).map((f) => path.join(pkiDir, f))]) await chown(p, owner.uid, owner.gid)
  }
  // What init wrote must pass the same loader `check` and `serve` use.
  // (Minus the one that `agent add` answers: no agents yet.)
  const warnings = (await loadRelayConfig(configFile)).warnings.filter((w) => !w.startsWith('agents: no agents'))

  const keys = await Promise.all([ca.caKeyFile, ca.serverKeyFile].map(async (f) => `${path.basename(f)} ${((await stat(f)).mode & 0o777).toString(8)}`))
  print(`created ${configFile} (0${owner ? '640' : '600'}; \`porchlight-relay check\` passes${warnings.length > 0 ? `, with ${warnings.length} warning(s)` : ''})`)
  for (const w of warnings) print(`  warning: ${w}`)
  print(`created the relay's CA and the agents' certificate for ${domain} in ${pkiDir} (0700; ${keys.join(', ')})`)
  print(`created ${stateDir} (0700)${owner ? `; data owned by ${owner.name}` : ''}`)
  print('')
  print('admin token for the API, /metrics and the dashboard (shown only this once; relay.yaml keeps its sha256):')
  print(`  ${adminToken}`)
  print('')
  print('DNS: create these records, pointing at this server\'s public address (see docs/dns.md):')
  print(`  ${`${domain}.`.padEnd(domain.length + 5)} A/AAAA  <public address>`)
  print(`  ${`*.${domain}.`.padEnd(domain.length + 5)} A/AAAA  <public address>`)
  const own = publicLookingAddresses()
  if (own.length > 0) print(`  (this machine's addresses: ${own.join(', ')})`)
  print('')
  const c = configFile === path.join(DEFAULT_CONFIG_DIR, 'relay.yaml') ? '' : ` -c ${configFile}`
  print('next:')
  if (https) print(`  open ports 80 and 443${https.agentsShared ? '' : ` and ${listen.agents.replace(/^.*:/, '')}`} in the firewall; the relay orders each name's certificate when an agent publishes it`)
  print(`  porchlight-relay serve${c}      (or: systemctl enable --now porchlight-relay)`)
  print(`  porchlight-relay agent add laptop${c}   (prints the one line to run on the laptop)`)
  return { configFile, pkiDir, stateDir, adminToken }
}

function address(flag: string, text: string): string {
  try {
    return formatAddress(parseAddress(text))
  } catch (err) {
    throw new PorchlightError('PL_ERR_USAGE', [`${flag}: ${(err as Error).message}`])
  }
}

interface HttpsInput {
  email: string
  directory: string | null
  agentsShared: boolean
}

/** The HTTPS flags, checked; null without --acme-email (and then the other two are refused). */
function httpsOptions(opts: InitOptions): HttpsInput | null {
  if (opts.acmeEmail === undefined) {
    if (opts.acmeDirectory !== undefined || opts.agentsShared === true) throw new PorchlightError('PL_ERR_USAGE', [`${opts.acmeDirectory !== undefined ? '--acme-directory' : '--agents-shared'} needs --acme-email (HTTPS with ACME)`])
    return null
  }
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(opts.acmeEmail)) throw new PorchlightError('PL_ERR_USAGE', [`--acme-email ${JSON.stringify(opts.acmeEmail)} is not an email address`])
  if (opts.acmeDirectory !== undefined && !acmeDirectoryOk(opts.acmeDirectory)) {
    throw new PorchlightError('PL_ERR_USAGE', [`--acme-directory ${JSON.stringify(opts.acmeDirectory)}: expected an https:// URL (plain http only on a loopback address)`])
  }
  return { email: opts.acmeEmail, directory: opts.acmeDirectory ?? null, agentsShared: opts.agentsShared === true }
}

/** The loader's rule for acme.directory, checked before anything is written. */
function acmeDirectoryOk(text: string): boolean {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return false
  }
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname.replace(/^\[|\]$/g, '')))
}

interface YamlInput {
  domain: string
  listen: { public: string; agents: string; admin: string }
  https: HttpsInput | null
  pkiDir: string
  stateDir: string
  ca: { serverCertFile: string; serverKeyFile: string }
  adminTokenSha256: string
  configFile: string
}

/** The commented relay.yaml init writes; deploy/examples/relay.yaml documents every other key. */
function relayYaml(v: YamlInput): string {
  const q = (s: string): string => JSON.stringify(s)
  return `# Porchlight relay, written by \`porchlight-relay init\` on ${new Date().toISOString().slice(0, 10)}.
# Check it: porchlight-relay check -c ${v.configFile}
# Reload it without dropping tunnels: systemctl reload porchlight-relay (SIGHUP).
# Every key with its default: deploy/examples/relay.yaml and docs/configuration.md.

# Bare tunnel names are published under this name ("blog" -> blog.${v.domain}).
# DNS: ${v.domain} and *.${v.domain} point at this server.
domain: ${v.domain}

listen:
${v.https === null ? `  # Visitors' plain HTTP. For HTTPS add public_tls with a wildcard certificate (docs/tls.md).
  public: ${q(v.listen.public)}` : `  # Visitors' plain HTTP; also where the CA checks http-01 challenges.
  public: ${q(v.listen.public)}
  # Visitors' HTTPS. No certs: acme below obtains and renews one per published name (docs/https.md).
  public_tls: { address: ${q(RELAY_DEFAULTS.listen.public_tls_address)} }`}
${v.https?.agentsShared === true ? `  # Agents connect on the HTTPS listener (wss://${v.domain}, path /_porchlight/connect);
  # see docs/tls.md "Agents on 443".
  agents: shared` : `  # Agents connect here over wss:// (TLS below); open this port in the firewall.
  agents: ${q(v.listen.agents)}`}
  # API, dashboard and /metrics. Keep it on loopback; reach it with ssh -L.
  admin: ${q(v.listen.admin)}
${v.https === null ? '' : `
# Certificates for visitors' HTTPS from an ACME CA (challenge auto: http-01 on port 80).
acme:
  email: ${q(v.https.email)}${v.https.directory === null ? `
  # Let's Encrypt's staging CA to try first: https://acme-staging-v02.api.letsencrypt.org/directory` : `
  directory: ${q(v.https.directory)}`}

# http:// visitors are sent to https:// once their name has a certificate.
redirect_http: true
`}${v.https?.agentsShared === true ? '' : `
# The agents listener's certificate, signed by the relay's own CA in pki/. Agents pin that CA
# when they log in (porchlight login), so no public certificate is needed here.
tls:
  cert: ${q(v.ca.serverCertFile)}
  key: ${q(v.ca.serverKeyFile)}
`}
# The relay's CA, the agent certificates it issued and their revocations (cert issue|revoke|list).
pki: ${q(v.pkiDir)}

# Durable state: share-link key and revocations, relay-picked TCP ports, the run file.
state: ${q(v.stateDir)}

# sha256 of the admin token init printed once. Every /api and /metrics call needs
# "Authorization: Bearer <token>". A new token: porchlight-relay token new admin.
admin_token_sha256: "${v.adminTokenSha256}"

# Who may connect and what each may publish. Add agents with
#   porchlight-relay agent add NAME [--hosts ...] [--tcp-ports ...] [--outbound ...] [--cert]
# which edits this section in place (comments stay) and reloads the running relay.
agents: {}
`
}

/** Non-internal addresses of this machine, to help with the DNS records (may be private behind NAT). */
function publicLookingAddresses(): string[] {
  const out: string[] = []
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal || (a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80'))) continue
      out.push(a.address)
    }
  }
  return out.slice(0, 6)
}

/** uid/gid of the relay's service user when init runs as root; null otherwise. */
async function serviceOwner(user: string | undefined): Promise<{ name: string; uid: number; gid: number } | null> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    if (user !== undefined) throw new PorchlightError('PL_ERR_USAGE', ['--user needs root (to chown the files)'])
    return null
  }
  const name = user ?? SERVICE_USER
  const ids = lookupUser(name)
  if (ids === null && user !== undefined) throw new PorchlightError('PL_ERR_USAGE', [`--user ${name}: no such user`])
  return ids === null ? null : { name, ...ids }
}

function lookupUser(name: string): { uid: number; gid: number } | null {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(name)) return null
  try {
    const [uid, gid] = ['-u', '-g'].map((flag) => Number(execFileSync('id', [flag, name], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim()))
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid: uid!, gid: gid! } : null
  } catch {
    return null
  }
}
