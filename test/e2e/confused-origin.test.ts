// A confused local server never answers another visitor (issue 11, SECURITY.md rule 2): a response
// with extra bytes behind it, a Content-Length shorter or longer than its body, and an answer sent
// before the request body ended. The origin is a raw TCP server that does exactly that; two
// visitors on their own keep-alive connections interleave requests, and every answer must name
// the request it answers. The origin also records which requests each of its connections carried:
// no origin connection ever carries requests of two visitor connections.
import { createServer, type Socket } from 'node:net'
import { Agent, request } from 'node:http'
import t from 'tap'
import { startAgent, startRelay } from './harness/processes.js'

/** Requests seen per origin connection, in order ("A1", "B2", ...). */
const originConnections: string[][] = []

/** Answers each request by its path: /ok/ID, /extra/ID, /short/ID, /long/ID, /early/ID. */
function serveConfused(socket: Socket): void {
  const seen: string[] = []
  originConnections.push(seen)
  let buffered = Buffer.alloc(0)
  let bodyLeft = 0
  socket.on('error', () => undefined)
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk])
    for (;;) {
      if (bodyLeft > 0) {
        const n = Math.min(bodyLeft, buffered.length)
        bodyLeft -= n
        buffered = buffered.subarray(n)
        if (bodyLeft > 0) return
      }
      const end = buffered.indexOf('\r\n\r\n')
      if (end === -1) return
      const head = buffered.subarray(0, end).toString('latin1')
      buffered = buffered.subarray(end + 4)
      const [, kind, id] = /^\w+ \/(\w+)\/(\w+) HTTP/.exec(head) ?? []
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
      seen.push(id ?? '?')
      bodyLeft = length
      answer(socket, kind ?? 'ok', id ?? '?')
    }
  })
}

function answer(socket: Socket, kind: string, id: string): void {
  const forged = 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nFORGED'
  if (kind === 'extra') socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${id.length}\r\n\r\n${id}${forged}`)
  // Declares fewer bytes than it sends: the rest is a forged response.
  else if (kind === 'short') socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${id.length}\r\n\r\n${id}XX${forged}`)
  // Declares more than it sends, then closes: the visitor must see a cut response, nothing else.
  else if (kind === 'long') socket.end(`HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n${id}`)
  // /early/: answered at once, before the body (still arriving) was read.
  else socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${id.length}\r\n\r\n${id}`)
}

const origin = createServer({ allowHalfOpen: true }, serveConfused)
await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
t.teardown(() => origin.close())
const originPort = (origin.address() as { port: number }).port
const relay = await startRelay(t, { limits: { origin_timeout_ms: 5000 } })
await startAgent(t, relay, { tunnels: [{ http: 'confused', to: `http://127.0.0.1:${originPort}` }] })

interface Answer { status: number; body: string; cut: boolean }

/** One request on `agent`'s single keep-alive connection; a cut response resolves with cut: true. */
function ask(agent: Agent, path: string, body?: { first: string; rest: string; delayMs: number }): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: relay.publicPort, path, method: body ? 'POST' : 'GET', agent, headers: { host: 'confused.localhost', ...(body ? { 'content-length': body.first.length + body.rest.length } : {}) } }, (res) => {
      let text = ''
      res.setEncoding('latin1')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, cut: !res.complete }))
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: text, cut: true }))
    })
    req.on('error', () => resolve({ status: 0, body: '', cut: true }))
    if (body) {
      req.write(body.first)
      setTimeout(() => req.end(body.rest), body.delayMs)
    } else {
      req.end()
    }
  })
}

t.test('extra bytes, wrong Content-Length and early answers never answer another visitor', async (t) => {
  const visitorA = new Agent({ keepAlive: true, maxSockets: 1 })
  const visitorB = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => { visitorA.destroy(); visitorB.destroy() })
  const plan: Array<[Agent, string, string]> = [
    [visitorA, 'extra', 'A1'], [visitorB, 'ok', 'B1'], [visitorA, 'ok', 'A2'], [visitorB, 'short', 'B2'],
    [visitorA, 'short', 'A3'], [visitorB, 'ok', 'B3'], [visitorA, 'extra', 'A4'], [visitorB, 'extra', 'B4'],
    [visitorA, 'ok', 'A5'], [visitorB, 'ok', 'B5'],
  ]
  for (const [agent, kind, id] of plan) {
    // Both visitors in flight at once, so a shared origin connection would show.
    // The other visitor's id starts with its own letter, as every id does.
    const otherId = `${agent === visitorA ? 'B' : 'A'}o${id}`
    const [mine, other] = await Promise.all([ask(agent, `/${kind}/${id}`), ask(agent === visitorA ? visitorB : visitorA, `/ok/${otherId}`)])
    t.same(mine, { status: 200, body: id, cut: false }, `${kind}/${id} answers ${id} only`)
    t.same(other, { status: 200, body: otherId, cut: false }, `the other visitor's ok/${otherId} answers itself`)
  }
  t.ok(originConnections.length >= 2, `${originConnections.length} origin connections`)
  for (const requests of originConnections) {
    const visitors = new Set(requests.map((id) => id[0]))
    t.ok(visitors.size <= 1, `origin connection carried one visitor's requests: ${requests.join(',')}`)
  }
})

t.test('a response longer than its body is cut for its own visitor; the other is untouched', async (t) => {
  const visitorA = new Agent({ keepAlive: true, maxSockets: 1 })
  const visitorB = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => { visitorA.destroy(); visitorB.destroy() })
  const [cut, other] = await Promise.all([ask(visitorA, '/long/L1'), ask(visitorB, '/ok/M1')])
  t.equal(cut.status, 200)
  t.equal(cut.cut, true, 'the visitor sees a truncated response')
  t.equal(cut.body, 'L1', 'and only the bytes its origin sent')
  t.same(other, { status: 200, body: 'M1', cut: false })
  t.same(await ask(visitorA, '/ok/L2'), { status: 200, body: 'L2', cut: false }, 'the cut visitor\'s next request gets its own answer')
})

t.test('an answer before the request body ended stays with its request', async (t) => {
  const visitorA = new Agent({ keepAlive: true, maxSockets: 1 })
  const visitorB = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => { visitorA.destroy(); visitorB.destroy() })
  const [early, other] = await Promise.all([
    ask(visitorA, '/early/E1', { first: 'part one;', rest: 'part two', delayMs: 300 }),
    ask(visitorB, '/ok/F1'),
  ])
  t.same(early, { status: 200, body: 'E1', cut: false })
  t.same(other, { status: 200, body: 'F1', cut: false })
  t.same(await ask(visitorA, '/ok/E2'), { status: 200, body: 'E2', cut: false }, 'the next request on that connection answers itself')
  t.same(await ask(visitorB, '/ok/F2'), { status: 200, body: 'F2', cut: false })
})
