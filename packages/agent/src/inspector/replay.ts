import { PorchlightError } from '@porchlight/shared/errors'
import { z } from 'zod'
import { originRequestHeaders, relayResponseHeaders, type HeaderList } from '../tunnels/headers.js'
import { joinPath, originErrorCode } from '../tunnels/http.js'
import { loadUndici, originTarget, type HttpTunnelTarget, type OriginAgents } from '../tunnels/origins.js'
import { BODY_CAPTURE_BYTES, type CapturedExchange } from './capture.js'
import type { TrafficMonitor } from './traffic.js'

/** Longest the inspector waits for the local server's answer to a replay. */
export const REPLAY_TIMEOUT_MS = 30_000

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/

/**
 * POST /api/requests/:id/replay body; every field optional (absent = as captured). `headers`
 * replaces the captured list as a whole; `body` is text, `bodyBase64` bytes.
 */
export const ReplayEdits = z.strictObject({
  method: z.string().regex(METHOD, 'not an HTTP method').optional(),
  path: z.string().min(1).max(8192).startsWith('/', 'must start with /').optional(),
  headers: z.array(z.tuple([z.string().min(1).max(256), z.string().max(16_384)])).max(256).optional(),
  body: z.string().max(BODY_CAPTURE_BYTES * 4).optional(),
  bodyBase64: z.string().max(BODY_CAPTURE_BYTES * 6).optional(),
})

export type ReplayEdits = z.infer<typeof ReplayEdits>

export interface ReplayDeps {
  monitor: TrafficMonitor
  origins: OriginAgents
  /** The tunnel as the current config has it (its origin may have changed since the capture). */
  tunnel: (id: string) => HttpTunnelTarget | null
}

/**
 * Sends a captured request again, to the same tunnel's local server only (never anywhere a
 * caller names), with the same header hygiene as visitor traffic. The answer is recorded as a
 * new entry (`replayOf` = the original) and returned once complete.
 */
export async function replayExchange(original: CapturedExchange, edits: ReplayEdits, deps: ReplayDeps): Promise<CapturedExchange | null> {
  const tunnel = deps.tunnel(original.start.tunnel)
  if (tunnel === null) throw new PorchlightError('PL_ERR_NOT_FOUND', [`tunnel ${original.start.tunnel} is no longer configured`])
  const target = originTarget(tunnel)
  if (target instanceof Error) throw new PorchlightError('PL_ERR_HTTP_ORIGIN_UNREACHABLE', ['invalid origin URL in the agent config'])
  const method = edits.method ?? original.start.method
  const requestPath = edits.path ?? original.start.path
  const path = joinPath(target.pathname, requestPath)
  if (path === null) throw new PorchlightError('PL_ERR_HTTP_BAD_REQUEST', ['path must start with /'])
  let body: Buffer
  if (edits.bodyBase64 !== undefined) body = Buffer.from(edits.bodyBase64, 'base64')
  else if (edits.body !== undefined) body = Buffer.from(edits.body, 'utf8')
  else {
    const captured = original.requestBody.toJSON()
    if (captured.truncated) throw new PorchlightError('PL_ERR_HTTP_BAD_REQUEST', ['the captured body was cut at 64 KiB; send the body to replay with it'])
    body = original.requestBody.captured
  }
  const captured: HeaderList = edits.headers ?? original.start.headers
  // Framing is ours: the body is sent whole with its own length.
  const kept = captured.filter(([name]) => !['content-length', 'transfer-encoding'].includes(name.toLowerCase()))
  const headers = originRequestHeaders(kept, { host: tunnel.host_header ?? target.host, upgrade: false })
  if (body.length > 0 || !['GET', 'HEAD'].includes(method.toUpperCase())) headers.push(['content-length', String(body.length)])
  const { probe, entry } = deps.monitor.beginReplay({
    tunnel: original.start.tunnel,
    host: original.start.host,
    method,
    path: requestPath,
    headers: [...kept],
    replayOf: original.id,
  })
  if (body.length > 0) probe.requestBody(body)
  const rawHeaders: string[] = []
  for (const [name, value] of headers) rawHeaders.push(name, value)
  try {
    await loadUndici()
    const res = await deps.origins.pool(target).request({
      method,
      path,
      headers: rawHeaders,
      body: body.length > 0 ? body : null,
      headersTimeout: REPLAY_TIMEOUT_MS,
      bodyTimeout: REPLAY_TIMEOUT_MS,
    })
    const flat: string[] = []
    for (const [name, value] of Object.entries(res.headers)) {
      for (const v of Array.isArray(value) ? value : [value ?? '']) flat.push(name, v)
    }
    probe.response(res.statusCode, '', relayResponseHeaders(flat, res.statusCode))
    for await (const chunk of res.body as AsyncIterable<Buffer>) probe.responseBody(chunk)
    probe.end()
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    probe.end({ code: originErrorCode(e), message: `local server: ${e.code ?? e.message}` })
  }
  return entry
}
