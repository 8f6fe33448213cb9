import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
import { rootCertificates, type ConnectionOptions } from 'node:tls'
import WebSocket from 'ws'
import { PorchlightError } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import { MuxSession, websocketDuplex } from '@porchlight/shared/mux'
import { readCaFile, readCertBundle } from './tls-bundle.js'

/** The agent <-> relay link: the only file that imports `ws` (STYLE.md pattern 6). */
export const HANDSHAKE_TIMEOUT_MS = 10_000
/** Explicit, far below ws's 100 MiB default (SECURITY.md A11). */
export const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
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
}

/** The upgrade header that carries the instance id (docs/protocol.md). */
export const INSTANCE_HEADER = 'x-porchlight-instance'

/** The relay URL with the agent path: any path works on the relay, we use /agent. */
export function agentEndpoint(relay: string): URL {
  const url = new URL(relay)
  if (url.protocol === 'http:') url.protocol = 'ws:'
  if (url.protocol === 'https:') url.protocol = 'wss:'
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new PorchlightError('PL_ERR_LINK_CONNECT', [relay, 'the relay URL must be ws:// or wss://'])
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/agent'
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
  const ws = new WebSocket(url, {
    ...tlsOptions,
    headers: { authorization: `Bearer ${options.token}`, ...(options.instance !== undefined ? { [INSTANCE_HEADER]: options.instance } : {}) },
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

function startSession(ws: WebSocket, options: RelayLinkOptions): MuxSession {
  // Errors after the handshake surface through the duplex and the session's 'close' event.
  ws.on('error', (err) => options.log.debug({ err }, 'relay websocket error'))
  const duplex = websocketDuplex(ws, { maxMessageBytes: MAX_PAYLOAD_BYTES })
  return new MuxSession(duplex, {
    role: 'client',
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
