import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { request, type Agent, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import type { Readable } from 'node:stream'

/** A request a visitor sends to the relay's public listener, addressed by Host header. */
export interface VisitOptions {
  /** Host header, e.g. "blog.localhost" (the relay routes on it). */
  host: string
  path?: string
  method?: string
  headers?: Record<string, string | string[]>
  body?: string | Buffer | Readable
  /** An http.Agent to reuse connections across visits; default: a new connection per visit. */
  agent?: Agent
  timeoutMs?: number
}

export interface VisitResult {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  text: string
  /** Local port of the client socket: equal for two visits that shared one connection. */
  localPort: number | undefined
}

/** Starts a request through the relay and resolves with the response head (body not yet read). */
export function visitStream(port: number, opts: VisitOptions): Promise<IncomingMessage> {
  const timeoutMs = opts.timeoutMs ?? 10_000
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      method: opts.method ?? 'GET',
      path: opts.path ?? '/',
      headers: { ...opts.headers, host: opts.host },
      // A fresh connection per visit unless the test passes an agent: node's global agent keeps
      // connections alive, which would make every test depend on the previous one's connection.
      agent: opts.agent ?? false,
    })
    const timer = setTimeout(() => req.destroy(new Error(`no response head for ${opts.method ?? 'GET'} ${opts.host}${opts.path ?? '/'} within ${timeoutMs} ms`)), timeoutMs)
    req.once('response', res => { clearTimeout(timer); resolve(res) })
    req.once('error', err => { clearTimeout(timer); reject(err) })
    const body = opts.body
    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) req.end(body)
    else body.pipe(req)
  })
}

/** A whole request/response through the relay, body buffered. */
export async function visit(port: number, opts: VisitOptions): Promise<VisitResult> {
  const res = await visitStream(port, opts)
  // Read now: a keep-alive socket is detached from the response once the body is consumed.
  const localPort = res.socket?.localPort
  const chunks: Buffer[] = []
  for await (const chunk of res) chunks.push(chunk as Buffer)
  const body = Buffer.concat(chunks)
  return { status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8'), localPort }
}

export interface CurlResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the real curl binary (`-sS` added); resolves even when curl fails. */
export function curl(args: string[], timeoutMs = 20_000): Promise<CurlResult> {
  return new Promise(resolve => {
    execFile('curl', ['-sS', '--noproxy', '*', '--max-time', String(Math.ceil(timeoutMs / 1000)), ...args], { timeout: timeoutMs + 2000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const failure = err as (Error & { code?: number | string }) | null
      resolve({ code: failure === null ? 0 : typeof failure.code === 'number' ? failure.code : null, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

/**
 * Writes raw bytes to a port and collects what comes back until the server closes the connection
 * or waitMs passes (then the socket is destroyed). For requests node's client refuses to send.
 */
export function rawExchange(port: number, payload: string | Buffer, waitMs = 3000): Promise<{ response: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let settled = false
    const finish = (closedByServer: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ response: Buffer.concat(chunks).toString('latin1'), closedByServer })
    }
    const timer = setTimeout(() => finish(false), waitMs)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.once('end', () => finish(true))
    socket.once('close', () => finish(true))
    socket.once('error', err => {
      if (chunks.length > 0) finish(true)
      else if (!settled) { settled = true; clearTimeout(timer); reject(err) }
    })
    socket.write(payload)
  })
}

/** Status code of the first response in a raw HTTP/1.x exchange, or 0 when there was none. */
export function rawStatus(response: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(response)
  return m && m[1] !== undefined ? Number(m[1]) : 0
}

export interface DownloadResult {
  status: number
  headers: IncomingHttpHeaders
  bytes: number
  sha256: string
  ms: number
}

/** Streams a response body through sha256 without keeping it (large downloads). */
export async function download(port: number, opts: VisitOptions): Promise<DownloadResult> {
  const started = Date.now()
  const res = await visitStream(port, opts)
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of res) { hash.update(chunk as Buffer); bytes += (chunk as Buffer).length }
  return { status: res.statusCode ?? 0, headers: res.headers, bytes, sha256: hash.digest('hex'), ms: Date.now() - started }
}

/** One response as curl saw it (see curlPage). */
export interface CurlPage {
  status: number
  /** Headers of the last response (after redirects with `follow`), lowercase names, every value. */
  headers: Record<string, string[]>
  /** Status of every response curl saw, in order (302 then 200 when following a redirect). */
  statuses: number[]
  body: string
}

export interface CurlPageOptions {
  /** Scratch directory for the header and body files. */
  dir: string
  /** CA file trusted for HTTPS (e.g. the relay's pki/ca.crt). */
  cacert?: string
  /** Netscape cookie jar read and written like a browser's (-b/-c). */
  jar?: string
  follow?: boolean
  /** Source address (curl --interface), e.g. 127.0.0.2. */
  from?: string
  /** Further curl arguments (-u, -H, --cert ...). */
  args?: string[]
}

let curlPageCounter = 0

/**
 * One visit with the real curl binary, as a browser would make it: the URL's host is mapped to
 * 127.0.0.1 with --resolve (so Host, SNI and cookies all use the real name). Rejects only when
 * curl itself fails (TLS, connection); any HTTP status resolves.
 */
export async function curlPage(url: string, opts: CurlPageOptions): Promise<CurlPage> {
  const target = new URL(url)
  const port = target.port !== '' ? target.port : target.protocol === 'https:' ? '443' : '80'
  const n = ++curlPageCounter
  const headerFile = join(opts.dir, `curl-${process.pid}-${n}.headers`)
  const bodyFile = join(opts.dir, `curl-${process.pid}-${n}.body`)
  const args = [
    '--resolve', `${target.hostname}:${port}:127.0.0.1`,
    '-D', headerFile,
    '-o', bodyFile,
    ...(opts.cacert !== undefined ? ['--cacert', opts.cacert] : []),
    ...(opts.jar !== undefined ? ['-b', opts.jar, '-c', opts.jar] : []),
    ...(opts.follow === true ? ['-L'] : []),
    ...(opts.from !== undefined ? ['--interface', opts.from] : []),
    ...(opts.args ?? []),
    url,
  ]
  const res = await curl(args)
  if (res.code !== 0) throw new Error(`curl ${args.join(' ')} failed (exit ${String(res.code)}): ${res.stderr}`)
  const blocks = readFileSync(headerFile, 'latin1').split(/\r?\n\r?\n/).filter(b => b.startsWith('HTTP/'))
  const statuses = blocks.map(b => Number(/^HTTP\/[\d.]+ (\d{3})/.exec(b)?.[1] ?? 0))
  const headers: Record<string, string[]> = {}
  for (const line of (blocks.at(-1) ?? '').split(/\r?\n/).slice(1)) {
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    ;(headers[name] ??= []).push(line.slice(colon + 1).trim())
  }
  const body = existsSync(bodyFile) ? readFileSync(bodyFile, 'utf8') : ''
  return { status: statuses.at(-1) ?? 0, headers, statuses, body }
}

/**
 * The cookies in a curl (Netscape format) jar, each split into its 7 fields: domain (prefixed
 * `#HttpOnly_` for HttpOnly cookies), include-subdomains, path, secure, expiry (epoch s), name, value.
 */
export function jarCookies(jar: string): string[][] {
  if (!existsSync(jar)) return []
  return readFileSync(jar, 'utf8').split('\n')
    .filter(l => l.trim() !== '' && (!l.startsWith('#') || l.startsWith('#HttpOnly_')))
    .map(l => l.split('\t'))
}
