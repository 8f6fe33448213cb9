// The design floor's relay under SECURITY.md rule 2 as a property, for `npm run bench` only: the
// least any relay must do per request. Node's strict parser reads each visitor request; the relay
// writes a canonical head (hop-by-hop headers stripped, X-Forwarded-* set) and a body framed by
// Node's client onto ONE mux stream per visitor connection; the agent (per-connection-agent.mjs)
// copies those bytes to an origin socket of that stream alone; Node's client parser reads each
// response once here before it is written to the visitor. No routing, policy, limits, logs or
// metrics. Prints {"public":PORT,"agents":PORT} when listening.
import http from 'node:http'
import { WebSocketServer } from 'ws'
import { MuxSession, websocketDuplex } from '@porchlight/shared/mux'

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate'])

let session = null
const links = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 4 << 20 })
links.on('connection', (ws, req) => {
  req.socket.setNoDelay(true)
  session = new MuxSession(websocketDuplex(ws), { role: 'server' })
})

// Node's http.Agent treats its connection as a net.Socket; a mux stream has no TCP options to set.
function asSocket(stream) {
  stream.timeout = 0
  stream.setKeepAlive = () => stream
  stream.setNoDelay = () => stream
  stream.setTimeout = () => stream
  stream.ref = () => stream
  stream.unref = () => stream
  stream.on('error', () => undefined)
  return stream
}

/** One keep-alive "connection" (a mux stream) per visitor connection, opened on its first request. */
function linkFor(visitorSocket) {
  if (visitorSocket.floorAgent) return visitorSocket.floorAgent
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  agent.createConnection = () => asSocket(session.open())
  visitorSocket.floorAgent = agent
  visitorSocket.once('close', () => agent.destroy())
  return agent
}

function canonicalHead(req) {
  const headers = {}
  const raw = req.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    if (HOP_BY_HOP.has(name) || name.startsWith('x-forwarded-')) continue
    const prev = headers[name]
    headers[name] = prev === undefined ? raw[i + 1] : `${prev}, ${raw[i + 1]}`
  }
  headers['x-forwarded-for'] = req.socket.remoteAddress
  headers['x-forwarded-proto'] = 'http'
  return headers
}

const visitors = http.createServer({ noDelay: true, requireHostHeader: true }, (req, res) => {
  if (!session) { res.writeHead(503).end(); return }
  const upstream = http.request({ agent: linkFor(req.socket), method: req.method, path: req.url, headers: canonicalHead(req) }, (reply) => {
    const headers = []
    const raw = reply.rawHeaders
    for (let i = 0; i < raw.length; i += 2) if (!HOP_BY_HOP.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1])
    res.writeHead(reply.statusCode, headers)
    reply.pipe(res)
  })
  upstream.on('error', () => res.destroy())
  req.pipe(upstream)
})

await Promise.all([new Promise((resolve) => links.on('listening', resolve)), new Promise((resolve) => visitors.listen(0, '127.0.0.1', resolve))])
process.stdout.write(`${JSON.stringify({ public: visitors.address().port, agents: links.address().port })}\n`)
process.on('SIGTERM', () => process.exit(0))
