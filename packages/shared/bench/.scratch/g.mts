import { fork } from 'node:child_process'
import { once } from 'node:events'
import { WebSocket } from 'ws'
import { MuxSession, websocketDuplex, type MuxStream } from '../../src/mux/index.ts'
const child = fork(new URL('./dbg.mts', import.meta.url).pathname, ['--mux-bench-peer'], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
const [port] = await once(child, 'message') as [number]
for (let i = 0; i < 30; i++) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/mux-source?ms=200`, { perMessageDeflate: false })
  await once(ws, 'open')
  const session = new MuxSession(websocketDuplex(ws), { role: 'client' })
  session.on('close', (e) => { if (e) console.error('CLIENT CLOSE', i, e.message, (e as any).cause?.message) })
  const [stream] = (await once(session, 'stream')) as [MuxStream]
  stream.on('error', (e) => console.error('STREAM ERR', i, e.message))
  let bytes = 0
  stream.on('data', (c: Buffer) => { bytes += c.length })
  await new Promise((r) => { stream.on('end', r); stream.on('error', r) })
  session.close()
}
child.kill()
