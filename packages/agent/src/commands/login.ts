import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { dirname, join } from 'node:path'
import { connect, type DetailedPeerCertificate } from 'node:tls'
import { decodeEnrolmentCode, formatFingerprint, type EnrolmentCode } from '@porchlight/shared/enrol'
import { PorchlightError } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import { PROTOCOL_VERSION } from '@porchlight/shared/protocol'
import type { CliIo } from '../cli-io.js'
import { ControlChannel } from '../control-channel.js'
import { dialRelay } from '../relay-link.js'
import { connectThroughProxy, proxyFor } from '../proxy.js'
import { defaultConfigPath } from '../settings.js'
import { AGENT_VERSION } from '../version.js'

export interface LoginOptions {
  /** Where agent.yaml goes; default PORCHLIGHT_CONFIG or ~/.config/porchlight/agent.yaml. */
  config?: string | undefined
  /** Replace an existing agent.yaml and bundle. */
  force?: boolean | undefined
}

/** How long fetching the relay's chain for the pin may take. */
const PIN_TIMEOUT_MS = 10_000

/**
 * `porchlight login CODE`: the code from `porchlight-relay agent add` becomes agent.yaml (0600,
 * its directory 0700), the relay's CA pinned by fingerprint (and the client bundle, if the code
 * carries one), then one real connection that must end in the relay's welcome. After this,
 * `porchlight http 3000` needs no flags and no environment.
 */
export async function runLogin(codeText: string, opts: LoginOptions, log: Logger, io: CliIo): Promise<number> {
  const code = decodeEnrolmentCode(codeText)
  const file = opts.config ?? defaultConfigPath()
  const dir = dirname(file)
  if (opts.force !== true && (await exists(file))) {
    throw new PorchlightError('PL_ERR_CONFIG_EXISTS', [file, 'pass --force to replace it (the old token and bundle are overwritten)'])
  }
  const created = !(await exists(dir))
  await mkdir(dir, { recursive: true, mode: 0o700 })
  if (created) await chmod(dir, 0o700)

  let caFile: string | null = null
  if (code.caSha256 !== null) {
    const caPem = await fetchPinnedCa(code.relay, code.caSha256)
    caFile = join(dir, 'relay-ca.pem')
    await writeAtomic(caFile, caPem, 0o644)
    io.out(`pinned the relay's CA (SHA-256 ${formatFingerprint(code.caSha256)}) in ${caFile}`)
  } else if (code.relay.startsWith('ws://')) {
    io.err('warning: the relay URL is plain ws://: the token crosses the network unencrypted (fine on loopback only)')
  }
  let certFile: string | null = null
  if (code.clientCert !== null) {
    certFile = join(dir, `${code.agent}.pem`)
    // The bundle as `cert issue` writes it: certificate, key, CA (the pinned one).
    const caPem = caFile === null ? '' : await readFile(caFile, 'utf8')
    await writeAtomic(certFile, `${code.clientCert.cert}${code.clientCert.key}${caPem}`, 0o600)
    io.out(`wrote the client certificate bundle ${certFile} (0600)`)
  }
  await writeAtomic(file, agentYaml(code, certFile, caFile), 0o600)
  io.out(`wrote ${file} (0600) for agent ${code.agent} at ${code.relay}`)

  try {
    const welcome = await checkLink(code, certFile, caFile, log)
    io.out(`link ok: the relay welcomed agent ${welcome.agent} (domain ${welcome.domain})`)
  } catch (err) {
    io.err(`the config is written, but the link check failed; fix the cause and try \`porchlight up\` (or \`porchlight login --force\` with a new code):`)
    throw err
  }
  io.out('next: porchlight http 3000    (shares http://127.0.0.1:3000 and prints its public URL)')
  return 0
}

/**
 * Connects to the relay without trusting it yet, finds in the chain it presents the
 * certificate whose SHA-256 the code names, and returns it as PEM. Nothing is sent on this
 * connection (no token); trust comes from the fingerprint, and the link check that follows
 * verifies the relay against the pinned CA with full hostname checks.
 */
export async function fetchPinnedCa(relay: string, sha256: string, timeoutMs = PIN_TIMEOUT_MS): Promise<string> {
  const url = new URL(relay)
  if (url.protocol !== 'wss:') throw new PorchlightError('PL_ERR_ENROL_CODE', ['it pins a CA for a relay that is not wss://'])
  const host = url.hostname.replace(/^\[|\]$/g, '')
  const port = url.port === '' ? 443 : Number(url.port)
  // Behind an HTTP proxy (HTTPS_PROXY, NO_PROXY) the chain is read through its tunnel, like the link.
  const proxy = proxyFor(url, null, process.env)
  const tunnel = proxy === null ? null : await connectThroughProxy(proxy, host, port, { timeoutMs })
  const chain = await new Promise<DetailedPeerCertificate[]>((resolve, reject) => {
    const socket = connect({
      host,
      port,
      ...(tunnel !== null ? { socket: tunnel } : {}),
      ...(isIP(host) === 0 ? { servername: host } : {}),
      rejectUnauthorized: false, // lint-allow: pinned-fingerprint (the chain is only read; trust is the code's SHA-256)
    })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new PorchlightError('PL_ERR_LINK_CONNECT', [url.host, `no TLS handshake within ${timeoutMs} ms`]))
    }, timeoutMs)
    socket.once('secureConnect', () => {
      clearTimeout(timer)
      const certs: DetailedPeerCertificate[] = []
      let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true)
      while (cert !== undefined && cert.raw !== undefined && !certs.some((c) => c.fingerprint256 === cert!.fingerprint256)) {
        certs.push(cert)
        cert = cert.issuerCertificate
      }
      socket.destroy()
      resolve(certs)
    })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      reject(new PorchlightError('PL_ERR_LINK_CONNECT', [url.host, err.code !== undefined && !err.message.includes(err.code) ? `${err.message} (${err.code})` : err.message]))
    })
  })
  const wanted = sha256.toLowerCase()
  const match = chain.find((c) => c.fingerprint256.replace(/:/g, '').toLowerCase() === wanted)
  if (match === undefined) {
    const seen = chain.map((c) => `${c.subject?.CN ?? '?'} ${c.fingerprint256}`).join('; ')
    throw new PorchlightError('PL_ERR_ENROL_PIN', [url.host, formatFingerprint(wanted), seen === '' ? 'no certificate' : seen])
  }
  const base64 = match.raw.toString('base64').match(/.{1,64}/g)?.join('\n') ?? ''
  return `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`
}

/** One connection as `up` makes it: TLS verified against the pinned CA, token, hello -> welcome. */
async function checkLink(code: EnrolmentCode, cert: string | null, ca: string | null, log: Logger): Promise<{ agent: string; domain: string }> {
  const session = await dialRelay({ relay: code.relay, token: code.token, cert, ca, log })
  try {
    const control = new ControlChannel(session.open(), log)
    try {
      const welcome = await control.hello(AGENT_VERSION, PROTOCOL_VERSION)
      return { agent: welcome.agent, domain: welcome.domain }
    } finally {
      control.close()
    }
  } finally {
    session.close()
  }
}

/** agent.yaml as login writes it: the relay settings, no tunnels, comments saying what comes next. */
function agentYaml(code: EnrolmentCode, cert: string | null, ca: string | null): string {
  const q = (s: string): string => JSON.stringify(s)
  return `# Porchlight agent "${code.agent}", written by \`porchlight login\` on ${new Date().toISOString().slice(0, 10)}.
# Quick shares read the relay settings from here: porchlight http 3000
# Permanent tunnels: list them under tunnels: and run porchlight up (docs/agent.md).
# Check it: porchlight check

relay: ${q(code.relay)}
# The agent's token (the relay stores only its sha256). Keep this file 0600.
token: ${q(code.token)}
${cert === null ? '# cert: client certificate bundle, when the relay requires one (agent add --cert)' : `# Client certificate bundle issued by the relay (certificate, key, CA).\ncert: ${q(cert)}`}
${ca === null ? '# ca: extra CA for the relay (not needed: its certificate is from a public CA)' : `# The relay's CA, pinned by fingerprint at login.\nca: ${q(ca)}`}

tunnels: []
#  - http: blog                  # -> blog.<relay domain>, if the relay allows it
#    to: http://127.0.0.1:3000
#  - tcp: 2222
#    to: 127.0.0.1:22
`
}

async function writeAtomic(file: string, text: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, text, { mode })
  await chmod(tmp, mode)
  await rename(tmp, file)
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false)
}
