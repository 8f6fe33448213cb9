// The OLD design floor's agent (rule 2 as the mechanism it used to state: one mux stream per
// request, re-serialised by an HTTP client), kept as a labelled column of `npm run bench`: reads
// each stream's framed head, sends the request to the origin with undici, answers with a framed
// reply head and the body. Usage: per-request-agent.mjs AGENTS_PORT ORIGIN_PORT
import WebSocket from 'ws'
import { Pool } from 'undici'
import { MuxSession, websocketDuplex } from '@porchlight/shared/mux'
import { readHead, writeHead } from '@porchlight/shared/protocol'

const [agentsPort, originPort] = process.argv.slice(2).map(Number)
const origin = new Pool(`http://127.0.0.1:${originPort}`, { connections: 128 })

function serve(stream) {
  stream.on('error', () => undefined)
  readHead(stream).then((head) => {
    origin.dispatch({ method: head.method, path: head.url, headers: head.headers }, {
      onConnect() {},
      onHeaders(status, raw, resume) {
        stream.on('drain', resume)
        const headers = []
        for (let i = 0; i < raw.length; i += 2) headers.push(raw[i].toString('latin1'), raw[i + 1].toString('latin1'))
        // Head and a small body leave in one mux write, as in the product.
        stream.cork()
        writeHead(stream, { t: 'response', status, headers })
        process.nextTick(() => stream.uncork())
        return true
      },
      onData(chunk) { return stream.write(chunk) },
      onComplete() { stream.end() },
      onError() { stream.destroy() },
    })
  }, () => stream.destroy())
}

// The product's link settings, zero mask included (it skips client-side masking).
const ws = new WebSocket(`ws://127.0.0.1:${agentsPort}/`, { perMessageDeflate: false, maxPayload: 4 << 20, generateMask: (mask) => mask.fill(0) })
ws.on('open', () => {
  ws._socket.setNoDelay(true)
  process.stdout.write('connected\n')
})
ws.on('error', (err) => { process.stderr.write(`floor agent: ${err.message}\n`); process.exit(1) })
new MuxSession(websocketDuplex(ws, { maxMessageBytes: 4 << 20 }), { role: 'client', onStream: serve })
process.on('SIGTERM', () => process.exit(0))
