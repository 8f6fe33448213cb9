// The design floor's agent under SECURITY.md rule 2 as a property, for `npm run bench` only: each
// mux stream (one per visitor connection) gets its own origin socket and the agent copies bytes
// both ways without parsing them; the relay wrote the request bytes and parses the responses.
// Usage: per-connection-agent.mjs AGENTS_PORT ORIGIN_PORT
import { connect } from 'node:net'
import WebSocket from 'ws'
import { MuxSession, websocketDuplex } from '@porchlight/shared/mux'

const [agentsPort, originPort] = process.argv.slice(2).map(Number)

function serve(stream) {
  const origin = connect({ host: '127.0.0.1', port: originPort, noDelay: true, allowHalfOpen: true })
  stream.on('error', () => origin.destroy())
  origin.on('error', () => stream.destroy())
  stream.pipe(origin).pipe(stream)
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
