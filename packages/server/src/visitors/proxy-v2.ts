import { createServer, type Server, type Socket } from 'node:net'
import { ipAllowed, parseCidrList, parseProxyHeader } from '@porchlight/shared/net'
import type { Logger } from '@porchlight/shared/log'

/** A v2 header with the usual TLVs fits in this; a longer one is refused. */
const MAX_HEADER_BYTES = 536

/**
 * `listen.public_proxy_protocol`: a listener in front of a visitor server (HTTP or HTTPS) that
 * reads a PROXY protocol v2 header (HAProxy `send-proxy-v2`) from `trust_proxy` addresses and
 * makes the socket's remoteAddress the visitor's, so access rules, limits and logs see it. Other
 * addresses are served as they are, without one (their bytes go to the HTTP parser or TLS
 * untouched, so a forged header is just a bad request). From a trusted proxy the header is
 * required; v1, malformed or late headers close the connection. LOCAL (health checks) keeps the
 * proxy's own address.
 */
export function proxyProtocolFront(target: Server, opts: { trustProxy: () => readonly string[]; timeoutMs: () => number; log: Logger }): Server {
  let trustedFor: readonly string[] | null = null
  let cidrs = parseCidrList([]).cidrs
  const trusted = (address: string | undefined): boolean => {
    const list = opts.trustProxy()
    if (list !== trustedFor) {
      trustedFor = list
      cidrs = parseCidrList(list).cidrs
    }
    return ipAllowed(address, cidrs)
  }
  // The target's half-open setting (http.Server uses true): a visitor that half-closes after its
  // request must still get the answer.
  const allowHalfOpen = (target as Server & { allowHalfOpen?: boolean }).allowHalfOpen === true
  // The visitor server takes the socket as its own listener would hand it over: reading. What
  // came after the header (unshifted) is delivered first.
  const hand = (socket: Socket): void => {
    target.emit('connection', socket)
    socket.resume()
  }
  return createServer({ pauseOnConnect: true, noDelay: true, allowHalfOpen }, (socket: Socket) => {
    socket.on('error', () => undefined)
    if (!trusted(socket.remoteAddress)) {
      hand(socket)
      return
    }
    let buf = Buffer.alloc(0)
    const timer = setTimeout(() => refuse('no PROXY header in time'), opts.timeoutMs())
    const refuse = (reason: string): void => {
      clearTimeout(timer)
      opts.log.warn({ remote: socket.remoteAddress, reason }, 'PROXY protocol header refused')
      socket.destroy()
    }
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk])
      let header
      try {
        header = parseProxyHeader(buf)
      } catch (err) {
        return refuse((err as Error).message)
      }
      if (header === null) {
        if (buf.length >= MAX_HEADER_BYTES || (buf.length >= 16 && buf[0] !== 0x0d)) refuse('expected a PROXY v2 header from this trusted proxy')
        return
      }
      if (header.version !== 2) return refuse('PROXY v1 header (only v2 is read)')
      clearTimeout(timer)
      socket.off('data', onData)
      socket.pause()
      if (header.command === 'PROXY' && header.src !== null) {
        Object.defineProperty(socket, 'remoteAddress', { value: header.src.address, configurable: true })
        Object.defineProperty(socket, 'remotePort', { value: header.src.port, configurable: true })
      }
      const rest = buf.subarray(header.length)
      if (rest.length > 0) socket.unshift(rest)
      hand(socket)
    }
    socket.on('data', onData)
    socket.resume()
  })
}
