import { fork } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { WebSocket } from 'ws'
import { MuxSession, websocketDuplex, type MuxStream } from '../../src/mux/index.ts'
const child = fork(new URL('./peer.mts', import.meta.url).pathname, [], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
const [port] = await once(child, 'message') as [number]
for (let i = 0; i < 30; i++) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false })
  await once(ws, 'open')
  const log: string[] = []
  ws.on('message', (m: Buffer) => log.push(`${m.length}:${m.subarray(0, 12).toString('hex')}`))
  const session = new MuxSession(websocketDuplex(ws), { role: 'client' })
  let failed = false
  session.on('close', (e) => { if (e && e.message.includes('version')) { failed = true; console.error('CLIENT CLOSE', i, e.message); writeFileSync(`/tmp/muxscratch/client-${i}.log`, log.join('\n')) } })
  const [stream] = (await once(session, 'stream')) as [MuxStream]
  stream.on('error', () => {})
  stream.on('data', () => {})
  await new Promise((r) => { stream.on('end', r); stream.on('error', r) })
  session.close()
  if (failed) break
}
await new Promise((r) => setTimeout(r, 500))
child.kill()
