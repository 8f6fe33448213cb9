// micro: request/response over a mux session pair in one process (memory transport), 50 concurrent
import { MuxSession } from '../packages/shared/src/mux/index.js'
import { readHead, writeHead, parseReplyHead, parseStreamHead } from '../packages/shared/src/protocol/index.js'
import { memoryPair } from '../packages/shared/test/mux/helpers.js'
const [a, b] = memoryPair()
const relay = new MuxSession(a, { role: 'server', keepAliveIntervalMs: 0 })
const agent = new MuxSession(b, { role: 'client', keepAliveIntervalMs: 0 })
const BODY = Buffer.alloc(1024, 'x')
const HEAD = { t: 'http', tunnel: 'bench', host: 'bench.localhost', method: 'GET', url: '/1k', headers: [['host', 'bench.localhost'], ['user-agent', 'autocannon'], ['x-forwarded-for', '127.0.0.1'], ['x-forwarded-proto', 'http'], ['x-forwarded-host', 'bench.localhost']], upgrade: false, has_body: false }
agent.on('stream', async (s) => {
  s.on('error', () => {})
  const raw = await readHead(s, 10_000)
  const p = parseStreamHead(raw)
  if (!p.ok) throw new Error('bad')
  s.cork(); process.nextTick(() => s.uncork())
  writeHead(s, { t: 'response', status: 200, status_message: 'OK', headers: [['content-type', 'text/plain'], ['content-length', '1024'], ['date', 'Wed, 25 Nov 2026 22:00:00 GMT']] })
  s.write(BODY)
  s.end()
  s.resume()
})
const N = Number(process.argv[2] ?? 100000), C = 50
let started = 0, done = 0
async function one(): Promise<void> {
  const s = relay.open()
  s.on('error', () => {})
  writeHead(s, { ...HEAD })
  s.end()
  const reply = parseReplyHead(await readHead(s, 10_000))
  if (reply.t !== 'response') throw new Error('x')
  let n = 0
  await new Promise<void>((resolve) => { s.on('data', (c: Buffer) => { n += c.length }); s.on('end', resolve) })
  if (n !== 1024) throw new Error('len ' + n)
}
const t0 = performance.now(); const c0 = process.cpuUsage()
await new Promise<void>((resolve) => {
  const next = (): void => { if (started >= N) { if (done === N) resolve(); return } started++; one().then(() => { done++; next() }) }
  for (let i = 0; i < C; i++) next()
})
const ms = performance.now() - t0; const cu = process.cpuUsage(c0)
console.log(`${N} req in ${ms.toFixed(0)} ms: ${(N / ms * 1000).toFixed(0)}/s, cpu ${((cu.user + cu.system) / N).toFixed(1)} us/req (both sides)`)
relay.close(); agent.close()
