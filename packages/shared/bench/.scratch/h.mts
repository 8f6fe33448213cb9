import { once } from 'node:events'
import { WebSocket, WebSocketServer } from 'ws'
import { MuxSession, websocketDuplex, type MuxStream } from '../../src/mux/index.ts'
import { memoryPair } from '../../test/mux/helpers.ts'
const mode = process.argv[2]
async function pairFor(): Promise<[any, any]> {
  if (mode === 'mem') return memoryPair(Number(process.argv[3] ?? 0))
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 4 << 20 })
  await once(wss, 'listening')
  const conn = once(wss, 'connection')
  const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as any).port}`, { perMessageDeflate: false })
  await once(ws, 'open')
  const [sws] = await conn as [WebSocket]
  return [websocketDuplex(ws), websocketDuplex(sws)]
}
for (let i = 0; i < 10; i++) {
  const [a, b] = await pairFor()
  const client = new MuxSession(a, { role: 'client' })
  const server = new MuxSession(b, { role: 'server' })
  client.on('close', (e) => { if (e) console.error('CLIENT CLOSE', i, e.message) })
  server.on('close', (e) => { if (e) console.error('SERVER CLOSE', i, e.message) })
  const s = server.open()
  s.on('error', () => {})
  const [cs] = await once(client, 'stream') as [MuxStream]
  cs.on('error', (e) => console.error('cs err', e.message))
  let expect = 0, bad = -1, total = 0
  cs.on('data', (c: Buffer) => { for (let k = 0; k < c.length; k++) { if (bad < 0 && c[k] !== ((expect + k) & 0xff)) bad = expect + k } expect += c.length; total += c.length })
  const ended = new Promise((r) => { cs.on('end', r); cs.on('error', r) })
  const pattern = Buffer.alloc(1 << 20); for (let k = 0; k < pattern.length; k++) pattern[k] = k & 0xff
  const t0 = performance.now()
  for (let n = 0; n < 200; n++) { if (!s.write(pattern)) await once(s, 'drain') }
  s.end()
  await ended
  console.log(i, 'total', total, 'bad at', bad, Math.round(total / 1e3 / (performance.now() - t0)), 'MB/s')
  client.close(); server.close()
}
process.exit(0)
