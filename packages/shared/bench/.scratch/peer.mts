import { once } from 'node:events'
import { appendFileSync, writeFileSync } from 'node:fs'
import { WebSocketServer } from 'ws'
import { MuxSession, websocketDuplex } from '../../src/mux/index.ts'
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 4 << 20 })
await once(wss, 'listening')
let conn = 0
wss.on('connection', (ws) => {
  const my = conn++
  const log: string[] = []
  const orig = ws.send.bind(ws)
  ;(ws as any).send = (m: Buffer, o: any, cb: any) => { log.push(`${m.length}:${m.subarray(0, 12).toString('hex')}`); return orig(m, o, cb) }
  const session = new MuxSession(websocketDuplex(ws), { role: 'server' })
  session.on('close', () => writeFileSync(`/tmp/muxscratch/peer-${my}.log`, log.join('\n')))
  const s = session.open()
  s.on('error', () => {})
  const chunk = Buffer.alloc(1 << 20, 9)
  ;(async () => {
    const t0 = performance.now()
    while (performance.now() - t0 < 200) { if (!s.write(chunk)) await once(s, 'drain') }
    s.end()
  })()
})
process.send!((wss.address() as any).port)
