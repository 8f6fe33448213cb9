// The design floor's relay under SECURITY.md rule 2 as a property, for `npm run bench` only: the
// least any relay must do per request. Node's strict parser reads each visitor request; the relay
// writes the canonical bytes itself (request line, headers without hop-by-hop ones, X-Forwarded-*
// set, the body re-framed by its length or chunked) onto ONE mux stream per visitor connection;
// the agent (per-connection-agent.mjs) copies them to an origin socket of that stream alone; each
// response is parsed once here, by llhttp (Node's own parser, the one its HTTP client uses),
// before ServerResponse writes it to the visitor. No routing, policy, limits, logs or metrics.
// Prints {"public":PORT,"agents":PORT} when listening.
import http from 'node:http'
import { createRequire } from 'node:module'
import { WebSocketServer } from 'ws'
import { MuxSession, websocketDuplex } from '@porchlight/shared/mux'

const { HTTPParser } = createRequire(import.meta.url)('_http_common')
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate']
// The relay frames the body itself (and Node's server already answered any Expect: 100-continue);
// a response keeps its Content-Length for ServerResponse to use.
const REQUEST_DROP = new Set([...HOP_BY_HOP, 'content-length', 'expect'])
const RESPONSE_DROP = new Set(HOP_BY_HOP)
const SKIP_BODY = 1

let session = null
const links = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 4 << 20 })
links.on('connection', (ws, req) => {
  req.socket.setNoDelay(true)
  session = new MuxSession(websocketDuplex(ws), { role: 'server' })
})

/** One visitor connection's link: its mux stream, the response parser on it, and the responses it owes, in order. */
class Link {
  constructor(visitorSocket) {
    this.waiting = [] // { res, head } in request order: responses come back in the same order
    this.paused = false
    this.resume = () => { if (this.paused) { this.paused = false; this.stream.resume() } }
    this.stream = session.open()
    this.stream.on('error', () => this.fail())
    // The origin closed: a response delimited by the close completes, anything still owed fails.
    this.stream.on('end', () => { this.parser.finish(); this.fail() })
    this.parser = new HTTPParser()
    this.parser.initialize(HTTPParser.RESPONSE, {})
    this.informational = false
    this.parser[HTTPParser.kOnHeadersComplete] = (_maj, _min, raw, _m, _u, status) => {
      // A 1xx before the real response (the visitor's 100-continue was answered by Node): dropped.
      this.informational = status < 200
      if (this.informational) return 0
      // A response nobody asked for (a confused origin): this visitor's link ends, no other sees it.
      if (this.waiting.length === 0) { this.stream.destroy(); return SKIP_BODY }
      const { res, head } = this.waiting[0]
      const headers = []
      for (let i = 0; i < raw.length; i += 2) if (!RESPONSE_DROP.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1])
      res.writeHead(status, headers)
      return head ? SKIP_BODY : 0
    }
    this.parser[HTTPParser.kOnBody] = (chunk) => {
      // Backpressure by the write's own callback (it runs once the bytes reached the socket).
      if (this.waiting.length > 0 && !this.waiting[0].res.write(chunk, this.resume)) { this.paused = true; this.stream.pause() }
    }
    this.parser[HTTPParser.kOnMessageComplete] = () => {
      if (this.informational) this.informational = false
      else this.waiting.shift()?.res.end()
    }
    this.stream.on('data', (chunk) => {
      const r = this.parser.execute(chunk)
      if (r instanceof Error) this.fail()
    })
    visitorSocket.once('close', () => { this.stream.destroy(); this.parser.close?.() })
  }

  fail() {
    for (const { res } of this.waiting) res.destroy()
    this.waiting.length = 0
  }

  send(req, res) {
    this.waiting.push({ res, head: req.method === 'HEAD' })
    let head = `${req.method} ${req.url} HTTP/1.1\r\n`
    const raw = req.rawHeaders
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toLowerCase()
      if (!REQUEST_DROP.has(name) && !name.startsWith('x-forwarded-')) head += `${raw[i]}: ${raw[i + 1]}\r\n`
    }
    head += `x-forwarded-for: ${req.socket.remoteAddress}\r\nx-forwarded-proto: http\r\n`
    const length = req.headers['content-length']
    const chunked = length === undefined && req.headers['transfer-encoding'] !== undefined
    if (length !== undefined) head += `content-length: ${length}\r\n`
    else if (chunked) head += 'transfer-encoding: chunked\r\n'
    this.stream.write(`${head}\r\n`, 'latin1')
    if (length === undefined && !chunked) return
    req.on('data', (chunk) => {
      if (chunked) this.stream.write(`${chunk.length.toString(16)}\r\n`, 'latin1')
      if (!this.stream.write(chunk)) { req.pause(); this.stream.once('drain', () => req.resume()) }
      if (chunked) this.stream.write('\r\n', 'latin1')
    })
    if (chunked) req.on('end', () => this.stream.write('0\r\n\r\n', 'latin1'))
  }
}

const visitors = http.createServer({ noDelay: true, requireHostHeader: true }, (req, res) => {
  if (!session) { res.writeHead(503).end(); return }
  req.socket.floorLink ??= new Link(req.socket)
  req.socket.floorLink.send(req, res)
})

await Promise.all([new Promise((resolve) => links.on('listening', resolve)), new Promise((resolve) => visitors.listen(0, '127.0.0.1', resolve))])
process.stdout.write(`${JSON.stringify({ public: visitors.address().port, agents: links.address().port })}\n`)
process.on('SIGTERM', () => process.exit(0))
