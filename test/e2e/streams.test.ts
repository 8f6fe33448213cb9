// Streams are bounded and always given back (SECURITY E1, E2, F-series): requests beyond
// `limits.max_streams_per_agent` get a fast 503 while the others go on, and visitors that leave
// early, origins that never answer and origins that are down leave no stream behind on the relay
// and no request running on the origin.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:net'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { startAgent, startRelay, type RelayProcess } from './harness/processes.js'
import { visit, visitStream, type VisitResult } from './harness/visitor.js'
import { pollUntil } from './harness/wait.js'

/** Mux streams the relay holds for the agent (the control stream is one of them). */
async function relayStreams(relay: RelayProcess): Promise<number> {
  return (await relay.connectedAgents()).find(a => a.name === 'laptop')?.streams ?? -1
}

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

t.test('requests beyond max_streams_per_agent get a fast 503; the others complete; the stream table empties', async t => {
  const held: ServerResponse[] = []
  const origin = await startHttpOrigin(t, {
    '/hold': (req: IncomingMessage, res: ServerResponse) => { req.resume(); held.push(res) },
  })
  const limit = 8
  const relay = await startRelay(t, { limits: { max_streams_per_agent: limit } })
  await startAgent(t, relay, { tunnels: [{ http: 'busy', to: origin.url }] })
  t.equal(await relayStreams(relay), 1, 'idle: only the control stream')

  const sent = 12
  const started = Date.now()
  let settled = 0
  const answers: Array<Promise<VisitResult & { ms: number }>> = []
  for (let i = 0; i < sent; i++) {
    answers.push(visit(relay.publicPort, { host: 'busy.localhost', path: '/hold', timeoutMs: 15_000 }).then(r => {
      settled++
      return { ...r, ms: Date.now() - started }
    }))
  }
  // The control stream takes one slot, so limit - 1 requests reach the origin and wait there;
  // the rest are answered while those are still held.
  await pollUntil(async () => held.length, n => n === limit - 1, { timeoutMs: 5000, intervalMs: 20 })
  await pollUntil(async () => settled, n => n === sent - (limit - 1), { timeoutMs: 5000, intervalMs: 20 })
  t.equal(await relayStreams(relay), limit, 'every stream slot is in use')
  for (const res of held.splice(0)) res.end('done')
  const results = await Promise.all(answers)
  const rejected = results.filter(r => r.status === 503)
  const served = results.filter(r => r.status === 200)
  t.equal(served.length, limit - 1, `${limit - 1} served`)
  t.equal(rejected.length, sent - (limit - 1), `${sent - (limit - 1)} refused`)
  t.ok(served.every(r => r.text === 'done'), 'served requests carry the origin body')
  t.ok(rejected.every(r => r.text.includes('PL_ERR_MUX_STREAM_LIMIT')), 'refusals name the limit')
  const slowest = Math.max(...rejected.map(r => r.ms))
  t.ok(slowest < 1000, `refusals answered within ${slowest} ms`)
  t.equal(held.length, 0, 'nothing else reached the origin')

  const drained = await pollUntil(() => relayStreams(relay), n => n === 1, { timeoutMs: 3000, intervalMs: 50 })
  t.equal(drained.value, 1, `stream table back to the control stream after ${drained.ms} ms`)
  t.equal((await visit(relay.publicPort, { host: 'busy.localhost', path: '/status/200' })).status, 200, 'and the tunnel still serves')
})

t.test('visitors that leave, origins that never answer and origins that are down leave no stream behind', async t => {
  let slowOpen = 0
  const origin = await startHttpOrigin(t, {
    '/hang': (req: IncomingMessage, res: ServerResponse) => {
      slowOpen++
      req.resume()
      // The agent must cancel the origin request when the visitor goes: the origin sees the close.
      res.on('close', () => { slowOpen-- })
    },
  })
  const deadPort = await closedPort()
  const relay = await startRelay(t)
  await startAgent(t, relay, { tunnels: [{ http: 'live', to: origin.url }, { http: 'down', to: `http://127.0.0.1:${deadPort}` }] })

  // 1. Visitors that drop a 50 MB download right after its head.
  const dropped = await Promise.all(Array.from({ length: 20 }, async () => {
    const res = await visitStream(relay.publicPort, { host: 'live.localhost', path: `/bytes/${50 * 1024 * 1024}` })
    res.socket.destroy()
    return res.statusCode
  }))
  t.same(new Set(dropped), new Set([200]), '20 downloads started, then dropped by their visitors')

  // 2. Visitors that give up on an origin that never answers.
  const gaveUp = await Promise.all(Array.from({ length: 20 }, () =>
    visit(relay.publicPort, { host: 'live.localhost', path: '/hang', timeoutMs: 300 }).then(() => 'answered', (err: Error) => err.message)))
  t.equal(gaveUp.filter(m => m.includes('no response head')).length, 20, '20 visitors gave up waiting')

  // 3. An origin that is down: a 502 each, with the code.
  const down = await Promise.all(Array.from({ length: 20 }, () => visit(relay.publicPort, { host: 'down.localhost', path: '/' })))
  t.same(new Set(down.map(r => r.status)), new Set([502]), '20 requests to a stopped origin: 502')
  t.ok(down.every(r => r.text.includes('PL_ERR_HTTP_ORIGIN_UNREACHABLE')), 'each names the cause')

  const drained = await pollUntil(() => relayStreams(relay), n => n === 1, { timeoutMs: 3000, intervalMs: 50 })
  t.equal(drained.value, 1, `relay stream table back to the control stream after ${drained.ms} ms`)
  const cancelled = await pollUntil(async () => slowOpen, n => n === 0, { timeoutMs: 3000, intervalMs: 50 })
  t.equal(cancelled.value, 0, `every abandoned origin request was cancelled after ${cancelled.ms} ms`)
  t.equal((await visit(relay.publicPort, { host: 'live.localhost', path: '/status/204' })).status, 204, 'the tunnel still serves')
})

// SECURITY E3: a visitor that stops reading entirely is closed.
t.test('a visitor that stops reading is closed after limits.stall_timeout_ms; a quiet response is not', async t => {
  const origin = await startHttpOrigin(t, {
    // Two events 1.5 s apart: quiet for longer than the stall limit, but nobody is blocked.
    '/quiet': (req: IncomingMessage, res: ServerResponse) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: one\n\n')
      setTimeout(() => res.end('data: two\n\n'), 1500)
    },
  })
  const relay = await startRelay(t, { limits: { stall_timeout_ms: 1000 } })
  await startAgent(t, relay, { tunnels: [{ http: 'dl', to: origin.url }] })

  const quiet = await visit(relay.publicPort, { host: 'dl.localhost', path: '/quiet' })
  t.equal(quiet.text, 'data: one\n\ndata: two\n\n', 'a response quiet for 1.5 s arrives whole')

  const res = await visitStream(relay.publicPort, { host: 'dl.localhost', path: `/bytes/${200 * 1024 * 1024}` })
  t.equal(res.statusCode, 200)
  let received = 0
  let paused = false
  await new Promise<void>(resolve => {
    res.on('data', (chunk: Buffer) => {
      received += chunk.length
      // Stop reading after 1 MB: the socket buffers fill, the relay is blocked from then on.
      if (!paused && received >= 1024 * 1024) {
        paused = true
        res.pause()
        resolve()
      }
    })
  })
  const line = await relay.waitForLog(l => l['code'] === 'PL_ERR_HTTP_VISITOR_STALLED', 10_000, 'stall line')
  t.equal(line['host'], 'dl.localhost')
  t.ok(Number(line['blockedMs']) >= 1000 && Number(line['blockedMs']) < 2000, `blocked ${String(line['blockedMs'])} ms before the close`)
  // What the kernel still holds arrives, then the cut: the body stops short of its Content-Length.
  const ended = new Promise<boolean>(resolve => {
    res.once('end', () => resolve(true))
    res.once('close', () => resolve(res.complete))
  })
  res.resume()
  t.equal(await ended, false, 'the response ends incomplete')
  t.ok(received < 200 * 1024 * 1024, `the download was cut after ${received} bytes`)
  const drained = await pollUntil(() => relayStreams(relay), n => n === 1, { timeoutMs: 3000, intervalMs: 50 })
  t.equal(drained.value, 1, 'its stream was released')
})

// SECURITY E5: no head-of-line blocking.
t.test('one stalled upload does not hold up the next request on the same agent (flow control is per stream)', async t => {
  const origin = await startHttpOrigin(t, {
    // Takes the head, then never reads the body and never answers.
    '/sink': (req: IncomingMessage) => { req.pause() },
  })
  const relay = await startRelay(t)
  await startAgent(t, relay, { tunnels: [{ http: 'hol', to: origin.url }] })

  const body = new PassThrough()
  const upload = visitStream(relay.publicPort, { host: 'hol.localhost', method: 'PUT', path: '/sink', body, timeoutMs: 30_000 }).catch(() => null)
  // Push 100 MB as fast as backpressure allows; it stalls once the windows and buffers are full.
  let pushed = 0
  const chunk = Buffer.alloc(64 * 1024, 5)
  while (pushed < 100 * 1024 * 1024) {
    if (!body.write(chunk)) {
      const drained = await Promise.race([new Promise(resolve => body.once('drain', () => resolve(true))), new Promise(resolve => setTimeout(() => resolve(false), 1000))])
      if (!drained) break
    }
    pushed += chunk.length
  }
  t.ok(pushed < 100 * 1024 * 1024, `the upload stalled after ${(pushed / 1024 / 1024).toFixed(1)} MB (backpressure reached the visitor)`)
  const started = Date.now()
  const second = await visit(relay.publicPort, { host: 'hol.localhost', path: '/status/200' })
  const ms = Date.now() - started
  t.equal(second.status, 200)
  t.ok(ms < 1000, `a second request on the same link answered in ${ms} ms while the upload is stuck`)
  body.destroy()
  void upload
})

// SECURITY F1 (a): headers sent, then the agent dies: visibly truncated.
t.test('an agent killed mid-download: the visitor sees a truncated response, not a clean end', async t => {
  const origin = await startHttpOrigin(t)
  const relay = await startRelay(t)
  const agent = await startAgent(t, relay, { tunnels: [{ http: 'cut', to: origin.url }] })
  const total = 200 * 1024 * 1024
  const res = await visitStream(relay.publicPort, { host: 'cut.localhost', path: `/bytes/${total}` })
  t.equal(res.statusCode, 200)
  let received = 0
  let killedAt = 0
  const ended = new Promise<{ complete: boolean; ms: number }>(resolve => {
    res.on('data', (chunk: Buffer) => {
      received += chunk.length
      if (killedAt === 0 && received >= 4 * 1024 * 1024) {
        killedAt = Date.now()
        process.kill(agent.pid, 'SIGKILL')
      }
    })
    res.once('end', () => resolve({ complete: res.complete, ms: Date.now() - killedAt }))
    res.once('close', () => resolve({ complete: res.complete, ms: Date.now() - killedAt }))
  })
  const result = await ended
  t.equal(result.complete, false, 'the response is marked incomplete')
  t.ok(received < total, `cut after ${received} of ${total} bytes`)
  t.ok(result.ms < 2000, `the visitor's connection ended ${result.ms} ms after the kill`)
  const page = await visit(relay.publicPort, { host: 'cut.localhost', path: '/' })
  t.equal(page.status, 503, 'and the next visitor gets "tunnel offline"')
})
