import net from 'node:net'
import { describeProxy, parseProxyUrl } from '@porchlight/shared/config'
import { PorchlightError } from '@porchlight/shared/errors'

/**
 * The agent's way out through an HTTP proxy (corporate networks): which proxy, if any, a relay URL
 * goes through (agent.yaml `proxy:`, else HTTPS_PROXY/HTTP_PROXY, minus NO_PROXY), and the CONNECT
 * handshake that turns a connection to the proxy into a byte tunnel to the relay. TLS to the relay
 * runs inside that tunnel, verified as on a direct link: the proxy sees only ciphertext.
 */

/** Largest CONNECT reply head read from a proxy; real ones are a few hundred bytes. */
export const MAX_PROXY_REPLY_BYTES = 16 * 1024

/**
 * The proxy for a ws:// or wss:// relay URL, or null to dial directly. `configured` is agent.yaml's
 * `proxy:` (false: never; null/undefined: the environment). wss:// reads https_proxy, then
 * HTTPS_PROXY; ws:// reads http_proxy, then HTTP_PROXY. NO_PROXY (or no_proxy) applies to both.
 * Throws PL_ERR_LINK_PROXY for a value that is not an http:// proxy URL.
 */
export function proxyFor(relay: URL, configured: string | false | null | undefined, env: NodeJS.ProcessEnv): URL | null {
  if (configured === false) return null
  const fromEnv = relay.protocol === 'wss:' ? firstSet(env, ['https_proxy', 'HTTPS_PROXY']) : firstSet(env, ['http_proxy', 'HTTP_PROXY'])
  const chosen = configured === null || configured === undefined ? fromEnv : { name: 'proxy', value: configured }
  if (chosen === null) return null
  if (bypassesProxy(relay, firstSet(env, ['no_proxy', 'NO_PROXY'])?.value ?? '')) return null
  try {
    return parseProxyUrl(chosen.value)
  } catch (err) {
    throw new PorchlightError('PL_ERR_LINK_PROXY', [chosen.name, (err as Error).message])
  }
}

interface Setting { name: string; value: string }

function firstSet(env: NodeJS.ProcessEnv, names: string[]): Setting | null {
  for (const name of names) {
    const value = env[name]
    if (value !== undefined && value.trim() !== '') return { name, value }
  }
  return null
}

/**
 * NO_PROXY as curl and most tools read it: a comma (or space) separated list; `*` matches every
 * host; an entry matches the host itself and every name under it (`example.com` and
 * `.example.com` both match `relay.example.com`); `host:port` only that port; IP literals exactly.
 */
export function bypassesProxy(relay: URL, noProxy: string): boolean {
  const host = relay.hostname.replace(/^\[|\]$/g, '').toLowerCase().replace(/\.$/, '')
  const port = Number(relay.port === '' ? (relay.protocol === 'wss:' ? 443 : 80) : relay.port)
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase()
    if (entry === '') continue
    if (entry === '*') return true
    const { name, entryPort } = splitEntry(entry)
    if (entryPort !== null && entryPort !== port) continue
    const bare = name.replace(/^\*?\./, '').replace(/\.$/, '')
    if (bare === '') continue
    if (host === bare) return true
    if (net.isIP(host) === 0 && host.endsWith(`.${bare}`)) return true
  }
  return false
}

function splitEntry(entry: string): { name: string; entryPort: number | null } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry)
  if (bracketed) return { name: bracketed[1]!, entryPort: bracketed[2] === undefined ? null : Number(bracketed[2]) }
  // A bare IPv6 address has colons of its own and no port.
  if (net.isIPv6(entry)) return { name: entry, entryPort: null }
  const m = /^(.*):(\d+)$/.exec(entry)
  return m ? { name: m[1]!, entryPort: Number(m[2]) } : { name: entry, entryPort: null }
}

/** What a proxy answered to CONNECT. `rest`: bytes after the head. */
export type ConnectReply =
  | { state: 'incomplete' }
  | { state: 'done'; status: number; reason: string; rest: Buffer }

/**
 * Parses a CONNECT reply head from the bytes read so far (pure: bytes in, verdict out). Throws an
 * Error saying what is wrong for a head that is not HTTP or is longer than maxBytes.
 */
export function parseConnectReply(buffer: Buffer, maxBytes = MAX_PROXY_REPLY_BYTES): ConnectReply {
  const end = buffer.indexOf('\r\n\r\n')
  if (end < 0) {
    if (buffer.length > maxBytes) throw new Error(`reply head longer than ${maxBytes} bytes`)
    // Fail fast on something that is clearly not HTTP (a TLS alert, an SSH banner).
    if (buffer.length >= 5 && !buffer.subarray(0, 5).equals(Buffer.from('HTTP/'))) throw new Error('the reply is not HTTP')
    return { state: 'incomplete' }
  }
  if (end + 4 > maxBytes) throw new Error(`reply head longer than ${maxBytes} bytes`)
  const head = buffer.subarray(0, end).toString('latin1')
  const statusLine = head.split('\r\n', 1)[0] ?? ''
  const m = /^HTTP\/1\.[01] (\d{3})(?: ([\x20-\x7e\t]*))?$/.exec(statusLine)
  if (m === null) throw new Error(`malformed status line ${JSON.stringify(statusLine.slice(0, 80))}`)
  return { state: 'done', status: Number(m[1]), reason: (m[2] ?? '').trim(), rest: buffer.subarray(end + 4) }
}

/** The CONNECT request for host:port, with basic credentials from the proxy URL when it has some. */
export function connectRequest(proxy: URL, host: string, port: number): string {
  const authority = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`
  const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`]
  if (proxy.username !== '' || proxy.password !== '') {
    const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`
    lines.push(`Proxy-Authorization: Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`)
  }
  return `${lines.join('\r\n')}\r\n\r\n`
}

export interface ProxyDialOptions {
  timeoutMs: number
  signal?: AbortSignal
}

/**
 * Opens a tunnel to host:port through an HTTP proxy: TCP to the proxy, CONNECT, a 200 within
 * timeoutMs. Resolves with the socket, now the tunnel (nothing read past the reply head). Rejects
 * with PL_ERR_LINK_PROXY: unreachable, timed out, not HTTP, or any status but 200 (named).
 */
export function connectThroughProxy(proxy: URL, host: string, port: number, opts: ProxyDialOptions): Promise<net.Socket> {
  const where = describeProxy(proxy)
  const target = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: proxy.hostname.replace(/^\[|\]$/g, ''), port: proxy.port === '' ? 80 : Number(proxy.port) })
    let received = Buffer.alloc(0)
    let connected = false
    let settled = false
    const finish = (err: PorchlightError | null): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
      socket.off('data', onData)
      socket.off('error', onError)
      socket.off('close', onClose)
      if (err === null) {
        resolve(socket)
        return
      }
      socket.destroy()
      reject(err)
    }
    const fail = (reason: string): void => finish(new PorchlightError('PL_ERR_LINK_PROXY', [where, reason]))
    const onAbort = (): void => fail('dial aborted')
    const onError = (err: NodeJS.ErrnoException): void => {
      const code = err.code !== undefined && !err.message.includes(err.code) ? ` (${err.code})` : ''
      fail(connected ? `connection failed during CONNECT to ${target}: ${err.message}${code}` : `unreachable: ${err.message}${code}`)
    }
    const onClose = (): void => fail(`closed the connection before answering CONNECT to ${target}`)
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk])
      let reply: ConnectReply
      try {
        reply = parseConnectReply(received)
      } catch (err) {
        fail(`bad answer to CONNECT ${target}: ${(err as Error).message}`)
        return
      }
      if (reply.state === 'incomplete') return
      if (reply.status !== 200) {
        fail(`refused CONNECT to ${target} with ${reply.status}${reply.reason === '' ? '' : ` ${reply.reason}`}`)
        return
      }
      // The relay speaks only after us (TLS ClientHello, or the upgrade request on ws://): bytes
      // behind the 200 are not the relay's, and a tunnel that starts with them is not one.
      if (reply.rest.length > 0) {
        fail(`sent ${reply.rest.length} bytes after its 200 to CONNECT ${target} before the relay could speak`)
        return
      }
      finish(null)
    }
    const timer = setTimeout(() => fail(`no answer to CONNECT ${target} within ${opts.timeoutMs} ms`), opts.timeoutMs)
    socket.on('error', onError)
    socket.on('close', onClose)
    socket.on('data', onData)
    socket.once('connect', () => {
      connected = true
      socket.setNoDelay(true)
      socket.write(connectRequest(proxy, host, port))
    })
    if (opts.signal?.aborted === true) onAbort()
    else opts.signal?.addEventListener('abort', onAbort)
  })
}
