import type { Duplex } from 'node:stream'
import { httpParsers as parsers, type HttpParser as Parser } from '@porchlight/shared/net'
import type { ExchangeProbe, TrafficHook } from './traffic.js'

/**
 * What the inspector and the terminal view see of a piped connection stream (tunnels/
 * http-connection.ts): copies of the bytes going each way are read by Node's own HTTP parser
 * (llhttp, the one its http module uses) and reported as exchanges. Watching only: the pipe never
 * waits for it, and a message it cannot parse ends the capture of that connection, never the
 * connection (the relay parses the responses that count).
 */

/** True when connection streams can be watched; otherwise watched tunnels keep per-request streams. */
export const canCaptureConnections = parsers !== null

/** Requests awaiting their response on one connection (the relay sends one at a time). */
const MAX_PENDING = 16
/** Header block bound, as the relay's. */
const MAX_HEADER_BYTES = 32 * 1024

interface Pending { probe: ExchangeProbe; head: boolean }

/** Taps `toOrigin` (relay → origin bytes) and `fromOrigin` (origin → relay) of one connection. */
export function captureConnection(traffic: TrafficHook, tunnel: string, host: string, toOrigin: Duplex, fromOrigin: Duplex): void {
  if (parsers === null) return
  const { HTTPParser, methods } = parsers
  const pending: Pending[] = []
  let requestProbe: ExchangeProbe | null = null
  let broken = false

  const stop = (error: { code: string; message: string }): void => {
    if (broken) return
    broken = true
    toOrigin.off('data', onRequestBytes)
    fromOrigin.off('data', onResponseBytes)
    for (const p of pending.splice(0)) p.probe.end(error)
    if (requestProbe !== null && !pending.some((p) => p.probe === requestProbe)) requestProbe.end(error)
    requestProbe = null
    requests.close()
    responses.close()
  }

  const requests = newParser(HTTPParser.REQUEST, (headers, method, url) => {
    if (pending.length >= MAX_PENDING) {
      stop({ code: 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', message: 'too many requests without a response' })
      return 0
    }
    const name = methods[method] ?? 'GET'
    requestProbe = traffic.begin({ tunnel, host, method: name, path: url, headers: pairs(headers) })
    pending.push({ probe: requestProbe, head: name === 'HEAD' })
    return 0
  }, (chunk) => requestProbe?.requestBody(chunk), () => { requestProbe = null })

  let current: Pending | null = null
  const responses = newParser(HTTPParser.RESPONSE, (headers, _method, _url, status, message) => {
    // 1xx answers are not the response (101 never comes here: upgrades use their own streams).
    if (status < 200) return 0
    current = pending.shift() ?? null
    current?.probe.response(status, message, pairs(headers))
    return current?.head === true ? 1 : 0
  }, (chunk) => current?.probe.responseBody(chunk), () => {
    current?.probe.end()
    current = null
  })

  const onRequestBytes = (chunk: Buffer): void => {
    if (requests.execute(chunk) instanceof Error) stop({ code: 'PL_ERR_HTTP_BAD_REQUEST', message: 'request not readable by the inspector' })
  }
  const onResponseBytes = (chunk: Buffer): void => {
    if (responses.execute(chunk) instanceof Error) stop({ code: 'PL_ERR_HTTP_BAD_ORIGIN_RESPONSE', message: 'the local server sent an invalid response' })
  }
  toOrigin.on('data', onRequestBytes)
  fromOrigin.on('data', onResponseBytes)
  // A response delimited by the close completes there; anything still owed was cut.
  fromOrigin.once('end', () => { if (!broken) responses.finish() })
  const onClose = (): void => stop({ code: 'PL_ERR_MUX_STREAM_RESET', message: 'the connection closed before the response' })
  toOrigin.once('close', onClose)
  fromOrigin.once('close', onClose)

  function newParser(type: number, onHead: (headers: string[], method: number, url: string, status: number, message: string) => number, onBody: (chunk: Buffer) => void, onComplete: () => void): Parser {
    const parser = new HTTPParser()
    parser.initialize(type, {}, MAX_HEADER_BYTES)
    // Long header blocks arrive in pieces before the head completes.
    let headerParts: string[] = []
    let urlPart = ''
    parser[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
      headerParts = headerParts.concat(headers)
      urlPart += url
    }
    parser[HTTPParser.kOnHeadersComplete] = (_major: number, _minor: number, headers: string[] | undefined, method: number, url: string | undefined, status: number, message: string) => {
      const all = headers ?? headerParts
      const target = url ?? urlPart
      headerParts = []
      urlPart = ''
      return onHead(all, method, target, status, message ?? '')
    }
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => onBody(chunk)
    parser[HTTPParser.kOnMessageComplete] = () => onComplete()
    return parser
  }
}

function pairs(flat: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!])
  return out
}
