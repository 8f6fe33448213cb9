import { fork } from 'node:child_process'
import { once } from 'node:events'
import { WebSocket } from 'ws'
import { MuxSession, websocketDuplex } from '../../src/mux/index.ts'
const child = fork(new URL('../mux-throughput.bench.ts', import.meta.url).pathname, ['--mux-bench-peer'], { execArgv: process.env.PEER_PROF ? ['--import=tsx', '--cpu-prof', '--cpu-prof-dir=/tmp/muxscratch/peerprof'] : ['--import=tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
const [port] = await once(child, 'message') as [number]
const mode = process.argv[2] ?? 'mux'
const ws = new WebSocket(`ws://127.0.0.1:${port}/${mode === 'raw' ? 'raw' : 'mux-sink'}`, { perMessageDeflate: false, generateMask: process.env.ZERO_MASK ? (m: Buffer) => { m.fill(0) } : undefined })
const session = mode === 'raw' ? null : new MuxSession(websocketDuplex(ws, { highWaterMarkBytes: Number(process.env.HWM ?? 1048576) }), { role: 'client' })
await once(ws, 'open')
const chunk = Buffer.alloc(1 << 20, 7)
const t0 = performance.now()
let sent = 0
if (session) {
  const s = session.open()
  while (performance.now() - t0 < Number(process.env.DUR ?? 3000)) { sent += chunk.length; if (!s.write(chunk)) await once(s, 'drain') }
  s.end()
  const parts: Buffer[] = []; for await (const p of s) parts.push(p as Buffer)
  console.log(mode, Math.round(sent / 1e3 / (performance.now() - t0)), 'MB/s', Buffer.concat(parts).toString() === String(sent))
} else {
  await new Promise<void>((resolve) => { const pump = () => { while (ws.bufferedAmount < 4 * chunk.length) { if (performance.now() - t0 > Number(process.env.DUR ?? 3000)) return resolve(); sent += chunk.length; ws.send(chunk, pump) } }; pump() })
  ws.send('done'); const [m] = await once(ws, 'message'); console.log(mode, Math.round(sent / 1e3 / (performance.now() - t0)), 'MB/s', String(m) === String(sent))
}
child.disconnect(); await new Promise((r) => setTimeout(r, 500)); process.exit(0)
