import { once } from 'node:events'
import { WebSocket, WebSocketServer } from 'ws'
import { MuxSession, websocketDuplex } from '../../src/mux/index.ts'
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 4 << 20 })
await once(wss, 'listening')
wss.on('connection', (ws) => {
  ws.on('message', (m: Buffer) => console.error('server got msg', m.length, m.subarray(0, 12).toString('hex')))
  const d = websocketDuplex(ws)
  d.on('data', (m: Buffer) => console.error('server duplex data', m.length))
  const s = new MuxSession(d, { role: 'server' })
  s.on('close', (e) => console.error('server close', e))
  s.on('stream', (st) => { console.error('server stream'); let n = 0; st.on('data', (c) => { n += c.length }); st.on('end', () => { console.error('server end', n); st.end(String(n)) }) })
})
const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as any).port}`, { perMessageDeflate: false })
await once(ws, 'open')
ws.on('message', (m: Buffer) => console.error('client got msg', m.length, m.subarray(0, 12).toString('hex')))
const origSend = ws.send.bind(ws)
;(ws as any).send = (m: Buffer, o: any, cb: any) => { console.error('client send', m.length); return origSend(m, o, cb) }
const c = new MuxSession(websocketDuplex(ws), { role: 'client' })
c.on('close', (e) => console.error('client close', e))
const st = c.open()
const chunk = Buffer.alloc(1 << 20)
for (let i = 0; i < 3; i++) { console.error('write', i, st.sendWindowBytes); if (!st.write(chunk)) await once(st, 'drain') }
st.end()
const parts: Buffer[] = []
for await (const p of st) parts.push(p)
console.error('reply', Buffer.concat(parts).toString())
c.close(); wss.close()
