import { MuxSession } from '../../src/mux/index.ts'
import { memoryPair, tcpPair, collect } from '../../test/mux/helpers.ts'
const t = { teardown: (_f: () => unknown) => {} }
const [a, b] = process.argv[2] === 'tcp' ? await tcpPair(t) : memoryPair()
const client = new MuxSession(a, { role: 'client', keepAliveIntervalMs: 0 })
const server = new MuxSession(b, { role: 'server', keepAliveIntervalMs: 0 })
server.on('stream', (s) => { s.on('error', () => {}); s.pipe(s) })
const payload = Buffer.alloc(100, 1)
const started = performance.now()
let done = 0
const worker = async () => {
  while (performance.now() - started < 3000) {
    const s = client.open()
    s.end(payload)
    await collect(s)
    done++
  }
}
await Promise.all(Array.from({ length: 64 }, worker))
console.log('streams/s', Math.round(done / ((performance.now() - started) / 1000)))
process.exit(0)
