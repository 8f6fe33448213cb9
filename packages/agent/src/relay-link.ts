import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
import type { Socket } from 'node:net'
import { connect as tlsConnect, rootCertificates, type ConnectionOptions } from 'node:tls'
import { AGENTS_SHARED_PATH, describeProxy } from '@porchlight/shared/config'
import WebSocket from 'ws'
import { PorchlightError } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import { MuxSession, websocketDuplex } from '@porchlight/shared/mux'
import { readCaFile, readCertBundle } from './tls-bundle.js'
import { connectThroughProxy, proxyFor } from './proxy.js'

/** The agent <-> relay link: the only file that imports `ws` (STYLE.md pattern 6). */
export const HANDSHAKE_TIMEOUT_MS = 10_000
/** Explicit, far below ws's 100 MiB default (SECURITY.md A11). */
export const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
/**
 * Streams the relay may have open on this agent at once. The relay's `limits.max_streams_per_agent`
 * is the operator's cap (1,024 by default); this one only keeps a broken relay from opening
 * without end, and must not undercut a relay configured for more (10,000 concurrent visitors).
 */
export const AGENT_MAX_STREAMS = 65_536
export const KEEPALIVE_INTERVAL_MS = 10_000
export const KEEPALIVE_TIMEOUT_MS = 20_000

export interface RelayLinkOptions {
  /** ws:// or wss:// URL of the relay's agents listener. */
  relay: string
  token: string
  /** PEM bundle (cert, key, CA) for mTLS; its CA is also trusted for the relay. */
  cert: string | null
  /** Extra CA file trusted for the relay. */
  ca: string | null
  log: Logger
  handshakeTimeoutMs?: number
  keepAliveIntervalMs?: number
  keepAliveTimeoutMs?: number
  /** Aborts a dial in progress (agent stopping). */
  signal?: AbortSignal
  /**
   * This process's instance id, kept for its lifetime (across reconnects): the relay replaces a
   * stale session of the same instance at once and lets other processes of this agent identity
   * hold sessions of their own.
   */
  instance?: string
  /** Which of this process's links this is (one per relay in a cluster): a reconnect of the same link replaces its stale session. */
  linkId?: string
  /** agent.yaml `proxy:` (false: never a proxy; null/absent: HTTPS_PROXY / HTTP_PROXY, NO_PROXY). */
  proxy?: string | false | null
  /** Where the proxy variables are read; process.env by default. */
  env?: NodeJS.ProcessEnv
}

/** The upgrade header that carries the instance id (docs/protocol.md). */
export const INSTANCE_HEADER = 'x-porchlight-instance'
/** The upgrade header naming which of the process's links this is. */
export const LINK_HEADER = 'x-porchlight-link'

/**
 * The relay URL with the agents' path. Without a path the agent asks for AGENTS_SHARED_PATH: a
 * relay with `listen.agents: shared` serves agents only there (on its HTTPS port, 443 when the URL
 * has none), and a dedicated agents listener accepts any path, so one URL form suits both.
 */
export function agentEndpoint(relay: string): URL {
  const url = new URL(relay)
  if (url.protocol === 'http:') url.protocol = 'ws:'
  if (url.protocol === 'https:') url.protocol = 'wss:'
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new PorchlightError('PL_ERR_LINK_CONNECT', [relay, 'the relay URL must be ws:// or wss://'])
  if (url.pathname === '/' || url.pathname === '') url.pathname = AGENTS_SHARED_PATH
  url.hash = ''
  return url
}

/** TLS options for wss: client cert from the bundle, its CA (+ `ca` file) trusted next to system roots. */
export async function relayTlsOptions(url: URL, cert: string | null, ca: string | null): Promise<ConnectionOptions> {
  const options: ConnectionOptions = {}
  const extraCa: string[] = []
  if (cert !== null) {
    const bundle = await readCertBundle(cert)
    options.cert = bundle.cert
    options.key = bundle.key
    extraCa.push(...bundle.ca)
  }
  if (ca !== null) extraCa.push(...(await readCaFile(ca)))
  if (extraCa.length > 0) options.ca = [...rootCertificates, ...extraCa]
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (isIP(host) === 0) options.servername = host
  return options
}

/**
 * Dials the relay and returns a connected client-role MuxSession, or throws a PorchlightError:
 * 401 -> PL_ERR_AUTH_BAD_TOKEN, 403 -> PL_ERR_AUTH_CERT_REJECTED (relay's reason), 429 ->
 * PL_ERR_AUTH_RATE_LIMITED, TLS verification -> PL_ERR_AUTH_RELAY_UNTRUSTED, anything else ->
 * PL_ERR_LINK_CONNECT. `retry` on the error tells the supervisor whether to try again.
 */
export async function dialRelay(options: RelayLinkOptions): Promise<MuxSession> {
  const url = agentEndpoint(options.relay)
  const tlsOptions = url.protocol === 'wss:' ? await relayTlsOptions(url, options.cert, options.ca) : {}
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS
  const proxy = proxyFor(url, options.proxy, options.env ?? process.env)
  let tunnel: Socket | null = null
  if (proxy !== null) {
    options.log.debug({ proxy: describeProxy(proxy), relay: url.host }, 'connecting to the relay through a proxy')
    tunnel = await openTunnel(url, proxy, tlsOptions, handshakeTimeoutMs, options.signal)
  }
  const through = tunnel
  const ws = new WebSocket(url, {
    ...tlsOptions,
    // Through a proxy: the upgrade request goes over the tunnel (TLS inside it already verified).
    ...(through !== null ? { createConnection: () => through } : {}),
    headers: { authorization: `Bearer ${options.token}`, ...(options.instance !== undefined ? { [INSTANCE_HEADER]: options.instance } : {}), ...(options.linkId !== undefined ? { [LINK_HEADER]: options.linkId } : {}) },
    perMessageDeflate: false,
    maxPayload: MAX_PAYLOAD_BYTES,
    // An all-zero mask makes ws skip client-side masking, which cost half of the agent's CPU on
    // downloads. Masking protects browsers' intermediaries from script-chosen bytes; this
    // link is not a browser, and on wss:// intermediaries cannot read the frames at all.
    generateMask: (mask: Buffer) => { mask.fill(0) },
    handshakeTimeout: handshakeTimeoutMs,
    followRedirects: false,
  })
  let session: MuxSession | null = null
  await new Promise<void>((resolve, reject) => {
    let settled = false
    const onAbort = (): void => settle(new PorchlightError('PL_ERR_LINK_CONNECT', [url.host, 'dial aborted']))
    const settle = (err: PorchlightError | null): void => {
      if (settled) return
      settled = true
      clearTimeout(guard)
      options.signal?.removeEventListener('abort', onAbort)
      if (err === null) resolve()
      else {
        ws.terminate()
        reject(err)
      }
    }
    // Belt and braces next to ws's own handshakeTimeout (which starts only once a request exists).
    const guard = setTimeout(() => settle(new PorchlightError('PL_ERR_LINK_CONNECT', [url.host, 'handshake timed out'])), handshakeTimeoutMs + 1_000)
    ws.on('upgrade', (res: IncomingMessage) => res.socket.setNoDelay(true))
    ws.on('unexpected-response', (_req, res: IncomingMessage) => {
      readShortBody(res).then((body) => settle(httpFailure(url, res.statusCode ?? 0, body)), () => settle(httpFailure(url, res.statusCode ?? 0, '')))
    })
    ws.on('error', (err: NodeJS.ErrnoException) => settle(classifyDialError(url, err)))
    ws.once('open', () => {
      // Wrap synchronously: the relay's first frames can arrive in the same read as the upgrade
      // response and ws emits them before an awaiting caller would resume.
      session = startSession(ws, options)
      settle(null)
    })
    if (options.signal?.aborted === true) onAbort()
    else options.signal?.addEventListener('abort', onAbort)
  })
  return session!
}

/** The relay's port: the URL's, else 443 for wss:// and 80 for ws://. */
function relayPort(url: URL): number {
  return url.port === '' ? (url.protocol === 'wss:' ? 443 : 80) : Number(url.port)
}

/**
 * A connection to the relay through an HTTP proxy: CONNECT, then for wss:// TLS inside the tunnel
 * with the same verification as a direct link (servername = the relay's host, its CA or the
 * system roots). A TLS failure is classified as on a direct dial (untrusted relay, clock skew).
 */
async function openTunnel(url: URL, proxy: URL, tlsOptions: ConnectionOptions, timeoutMs: number, signal: AbortSignal | undefined): Promise<Socket> {
  const host = url.hostname.replace(/^\[|\]$/g, '')
  const raw = await connectThroughProxy(proxy, host, relayPort(url), { timeoutMs, ...(signal !== undefined ? { signal } : {}) })
  if (url.protocol !== 'wss:') {
    raw.on('error', () => undefined)
    return raw
  }
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({ ...tlsOptions, socket: raw, host })
    const timer = setTimeout(() => fail(new PorchlightError('PL_ERR_LINK_CONNECT', [url.host, 'TLS handshake through the proxy timed out'])), timeoutMs)
    const fail = (err: PorchlightError): void => {
      clearTimeout(timer)
      secure.destroy()
      raw.destroy()
      reject(err)
    }
    secure.once('error', (err: NodeJS.ErrnoException) => fail(classifyDialError(url, err)))
    secure.once('secureConnect', () => {
      clearTimeout(timer)
      // From here ws owns the socket and listens for its errors; until it does, none may crash us.
      secure.removeAllListeners('error')
      secure.on('error', () => undefined)
      raw.on('error', () => undefined)
      resolve(secure)
    })
  })
}

function startSession(ws: WebSocket, options: RelayLinkOptions): MuxSession {
  // Errors after the handshake surface through the duplex and the session's 'close' event.
  ws.on('error', (err) => options.log.debug({ err }, 'relay websocket error'))
  const duplex = websocketDuplex(ws, { maxMessageBytes: MAX_PAYLOAD_BYTES })
  return new MuxSession(duplex, {
    role: 'client',
    maxStreams: AGENT_MAX_STREAMS,
    keepAliveIntervalMs: options.keepAliveIntervalMs ?? KEEPALIVE_INTERVAL_MS,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS,
  })
}

/** Maps a non-101 answer to the upgrade onto an error code. */
export function httpFailure(url: URL, status: number, body: string): PorchlightError {
  if (status === 401) return new PorchlightError('PL_ERR_AUTH_BAD_TOKEN')
  // The relay's 403 body is one line, "PL_ERR_AUTH_CERT_REJECTED: <reason>"; keep just the reason.
  const reason = body.replace(/^PL_ERR_[A-Z_]+:\s*/, '')
  if (status === 403) return new PorchlightError('PL_ERR_AUTH_CERT_REJECTED', [reason === '' ? 'HTTP 403' : reason])
  if (status === 429) return new PorchlightError('PL_ERR_AUTH_RATE_LIMITED')
  if (status === 409) return new PorchlightError('PL_ERR_LINK_DUPLICATE')
  return new PorchlightError('PL_ERR_LINK_CONNECT', [url.host, `HTTP ${status}${body === '' ? '' : ` ${body}`}`])
}

/** OpenSSL verification failures (and hostname mismatches) mean "do not trust this relay". */
const TLS_VERIFY = /^(ERR_TLS_CERT_ALTNAME_INVALID|CERT_\w+|\w*SELF_SIGNED\w*|UNABLE_TO_(VERIFY|GET)_\w+|HOSTNAME_MISMATCH|INVALID_CA)$/

/** No `cause`: the reason is already in the message, and pino would print it twice. */
export function classifyDialError(url: URL, err: NodeJS.ErrnoException, now = new Date()): PorchlightError {
  if (err instanceof PorchlightError) return err
  // Not yet valid or expired by our clock: far more often a wrong clock here than a bad relay.
  if (err.code === 'CERT_NOT_YET_VALID' || err.code === 'CERT_HAS_EXPIRED') {
    return new PorchlightError('PL_ERR_LINK_CLOCK_SKEW', [url.hostname, err.message, now.toISOString()])
  }
  if (err.code !== undefined && TLS_VERIFY.test(err.code)) {
    return new PorchlightError('PL_ERR_AUTH_RELAY_UNTRUSTED', [url.hostname, err.message])
  }
  const reason = err.code !== undefined && !err.message.includes(err.code) ? `${err.message} (${err.code})` : err.message
  return new PorchlightError('PL_ERR_LINK_CONNECT', [url.host, reason])
}

/** First line of the body, at most 1 KiB, within 2 s: the relay's 403 reason. */
function readShortBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (): void => {
      clearTimeout(timer)
      res.destroy()
      const text = Buffer.concat(chunks).toString('utf8').replace(/[^\x20-\x7e\n]/g, '')
      resolve((text.split('\n').find((l) => l.trim() !== '') ?? '').trim().slice(0, 300))
    }
    const timer = setTimeout(done, 2_000)
    res.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
      if (size >= 1024) done()
    })
    res.on('end', done)
    res.on('error', done)
  })
}
