// The OLD design floor's relay (one mux stream per request, as rule 2 used to demand), kept as a
// labelled column of `npm run bench`: Node's parser reads the visitor's request, one mux stream
// per request carries it as a framed head, the reply head is written back with Node's
// ServerResponse. No routing, policy, limits, logs or metrics. Prints {"public":PORT,"agents":PORT}.
import http from 'node:http'
import { WebSocketServer } from 'ws'
import { MuxSession, websocketDuplex } from '@porchlight/shared/mux'
import { readHead, writeHead } from '@porchlight/shared/protocol'

let session = null
const links = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 4 << 20 })
links.on('connection', (ws, req) => {
  req.socket.setNoDelay(true)
  session = new MuxSession(websocketDuplex(ws), { role: 'server' })
})

const visitors = http.createServer({ noDelay: true }, async (req, res) => {
  if (!session) { res.writeHead(503).end(); return }
  const stream = session.open()
  stream.on('error', () => res.destroy())
  writeHead(stream, { t: 'http', method: req.method, url: req.url, headers: req.rawHeaders })
  stream.end()
  try {
    const reply = await readHead(stream)
    res.writeHead(reply.status, reply.headers)
    stream.pipe(res)
  } catch {
    res.destroy()
  }
})

await Promise.all([new Promise((resolve) => links.on('listening', resolve)), new Promise((resolve) => visitors.listen(0, '127.0.0.1', resolve))])
process.stdout.write(`${JSON.stringify({ public: visitors.address().port, agents: links.address().port })}\n`)
process.on('SIGTERM', () => process.exit(0))
