import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { isPorchlightError, type ErrorCode } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import { dialTcp, pipeBoth } from '@porchlight/shared/net'
import { writeHead, type HttpConnectionHead } from '@porchlight/shared/protocol'
import { originTarget, type HttpTunnelTarget, type OriginTarget } from './origins.js'
import { captureConnection } from '../inspector/connection-capture.js'
import type { TrafficHook } from '../inspector/traffic.js'

const CONNECT_TIMEOUT_MS = 10_000

/**
 * One visitor connection of an http tunnel (an `http-conn` stream): dial the tunnel's own local
 * server, answer {t:'ok'}, then pipe bytes both ways. The relay's HTTP client wrote every byte
 * that arrives here from its own parse of the visitor's requests, and the relay parses every
 * response before a visitor sees it, so the agent does no HTTP work on this path. One stream is
 * one origin connection: nothing here is shared between visitor connections.
 * A dial that fails answers an error head (the relay shows PL_ERR_HTTP_ORIGIN_UNREACHABLE).
 * While someone watches the traffic, the exchanges on the pipe are read for them on the side.
 */
export function handleHttpConnection(stream: Duplex, head: HttpConnectionHead, tunnel: HttpTunnelTarget, deps: { log: Logger; traffic?: TrafficHook | null }, connectTimeoutMs = CONNECT_TIMEOUT_MS): void {
  const log = deps.log
  const target = originTarget(tunnel)
  if (target instanceof Error) {
    answerError(stream, 'PL_ERR_HTTP_ORIGIN_UNREACHABLE', 'invalid origin URL in the agent config')
    return
  }
  dialOrigin(target, stream, connectTimeoutMs).then(
    (socket) => {
      socket.on('error', (err) => log.debug({ err }, 'origin connection error'))
      if (stream.destroyed) {
        socket.destroy()
        return
      }
      writeHead(stream, { t: 'ok' })
      // Someone watches (inspector, terminal view): copies of both directions are parsed for them.
      if (deps.traffic != null) captureConnection(deps.traffic, tunnel.id, head.host, stream, socket)
      pipeBoth(stream, socket, (err) => {
        if (err && log.isLevelEnabled('debug')) log.debug({ err, tunnel: tunnel.id }, 'origin connection ended with an error')
      })
    },
    (err: unknown) => {
      if ((err as { code?: string }).code === 'ERR_DIAL_ABORTED') return // the visitor left while we dialled
      log.warn({ err, tunnel: tunnel.id, origin: target.origin }, 'local server unreachable')
      const detail = (err as { cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code ?? 'error'
      // No addresses: the relay may show this text to visitors.
      answerError(stream, 'PL_ERR_HTTP_ORIGIN_UNREACHABLE', `local server unreachable (${detail})`)
    },
  )
}

/** TCP to the origin, then TLS for an https:// origin (SNI from host_header or the URL's name). */
async function dialOrigin(target: OriginTarget, stream: Duplex, timeoutMs: number): Promise<Socket | TLSSocket> {
  const socket = await dialTcp({ host: target.hostname, port: target.port }, { timeoutMs, abortOn: stream, label: target.origin })
  if (!target.secure) return socket
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({ socket, ...target.tls, ALPNProtocols: ['http/1.1'] })
    const timer = setTimeout(() => secure.destroy(Object.assign(new Error('TLS handshake timed out'), { code: 'ETIMEDOUT' })), timeoutMs)
    secure.once('secureConnect', () => {
      clearTimeout(timer)
      secure.off('error', onError)
      resolve(secure)
    })
    const onError = (err: Error): void => {
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    }
    secure.once('error', onError)
  })
}

/** Error head, then end our half; the relay answers the visitor and resets the stream. */
function answerError(stream: Duplex, code: ErrorCode, message: string): void {
  if (stream.destroyed) return
  try {
    writeHead(stream, { t: 'error', code, message })
    stream.end()
    stream.resume()
  } catch (err) {
    if (!isPorchlightError(err)) stream.destroy()
  }
}
