import type { Duplex } from 'node:stream'
import { PorchlightError, type ErrorCode } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import { dialTcp, encodeProxyV1, encodeProxyV2, pipeBoth } from '@porchlight/shared/net'
import { writeHead, type TcpHead } from '@porchlight/shared/protocol'

/** What tunnels/tcp.ts needs from a `tcp:` tunnel of the agent config. */
export interface TcpTunnelTarget {
  kind: 'tcp'
  id: string
  /** The local service; the only place this module ever dials. */
  to: { host: string; port: number }
  proxy_protocol: 'v1' | 'v2' | null
}

const CONNECT_TIMEOUT_MS = 10_000

/**
 * Serves one visitor TCP connection arriving on a relay-opened stream: dials the tunnel's own
 * `to` (never an address from the head), writes a PROXY header first when configured (source =
 * the visitor, destination = the relay port it connected to), answers {t:'ok'} and pipes raw
 * bytes both ways. A failed dial answers {t:'error', code, message}. Never throws.
 */
export function handleTcpStream(stream: Duplex, head: TcpHead, tunnel: TcpTunnelTarget, log: Logger, connectTimeoutMs = CONNECT_TIMEOUT_MS): void {
  stream.on('error', (err) => log.debug({ err }, 'tcp stream error'))
  if (head.tunnel !== tunnel.id) {
    log.warn({ tunnel: head.tunnel }, 'relay asked for a tcp tunnel this agent does not publish')
    answerError(stream, 'PL_ERR_POLICY_NOT_PUBLISHED', new PorchlightError('PL_ERR_POLICY_NOT_PUBLISHED', [`tcp tunnel ${head.tunnel}`]).message)
    return
  }
  const target = `${tunnel.to.host}:${tunnel.to.port}`
  const started = Date.now()
  // abortOn: the visitor (or the relay) went away while we were dialling.
  dialTcp(tunnel.to, { timeoutMs: connectTimeoutMs, abortOn: stream }).then(
    (socket) => {
      socket.on('error', (err) => log.debug({ err }, 'local tcp socket error'))
      if (tunnel.proxy_protocol !== null) {
        const src = { address: head.remote_address, port: head.remote_port }
        const dst = { address: head.local_address, port: head.local_port }
        socket.write(tunnel.proxy_protocol === 'v1' ? encodeProxyV1(src, dst) : encodeProxyV2(src, dst))
      }
      writeHead(stream, { t: 'ok' })
      log.debug({ target, remote: head.remote_address }, 'tcp stream open')
      pipeBoth(stream, socket, (err) => {
        const fields = { remote: head.remote_address, bytesIn: socket.bytesWritten, bytesOut: socket.bytesRead, ms: Date.now() - started }
        if (err) log.debug({ ...fields, err }, 'tcp stream closed with error')
        else log.debug(fields, 'tcp stream closed')
      })
    },
    (err: unknown) => {
      if (!(err instanceof PorchlightError)) return // DialAbortedError: nobody is left to answer.
      if (err.code === 'PL_ERR_DIAL_TIMEOUT') log.warn({ target, ms: connectTimeoutMs }, 'local tcp service did not accept in time')
      else log.warn({ target, err: err.cause }, 'local tcp service unreachable')
      answerError(stream, err.code, err.message)
    },
  )
}

/** Error reply, then end our half; the relay resets the stream when it reads the error. */
function answerError(stream: Duplex, code: ErrorCode, message: string): void {
  if (stream.destroyed) return
  writeHead(stream, { t: 'error', code, message })
  stream.end()
  stream.resume()
}
