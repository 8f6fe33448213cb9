import { once } from 'node:events'
import { WebSocket, WebSocketServer } from 'ws'
import { MuxSession, websocketDuplex } from '/work/main/packages/shared/src/mux/index.ts'
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 4 << 20 })
await once(wss, 'listening')
wss.on('connection', (ws) => {
  const s = new MuxSession(websocketDuplex(ws), { role: 'server' })
  s.on('close', (e) => console.error('server close', e))
  s.on('stream', (st) => { let n = 0; st.on('data', (c) => { n += c.length }); st.on('end', () => { console.error('server end', n); st.end(String(n)) }) })
})
const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as any).port}`, { perMessageDeflate: false })
await once(ws, 'open')
const c = new MuxSession(websocketDuplex(ws), { role: 'client' })
c.on('close', (e) => console.error('client close', e))
const st = c.open()
const chunk = Buffer.alloc(1 << 20)
for (let i = 0; i < 20; i++) { console.error('write', i, st.sendWindowBytes); if (!st.write(chunk)) await once(st, 'drain') }
st.end()
const parts: Buffer[] = []
for await (const p of st) parts.push(p)
console.error('reply', Buffer.concat(parts).toString())
c.close(); wss.close()
