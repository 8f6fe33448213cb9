// SECURITY.md section A against the real relay binary: the agents' endpoint refuses bad, missing
// and odd tokens the same way before any 101 (A1), believes no identity header (A8), gives a
// replayed hello nothing without the token (A9), bounds WebSocket and mux frames (A11) and keeps a
// host bound to its agent whether that agent is online or not (A14).
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import WebSocket from 'ws'
import { startHttpOrigin } from '../e2e/harness/origins.js'
import { startAgent, startRelay } from '../e2e/harness/processes.js'
import { visit } from '../e2e/harness/visitor.js'
import { FakeAgent } from './helpers/fake-agent.js'

const relay = await startRelay(t, {
  agents: { laptop: { hosts: ['a.localhost'] }, intruder: { hosts: ['b.localhost'] }, spare: { hosts: ['c.localhost'] } },
})
const token = relay.tokens['laptop']!

/** One upgrade request on a fresh connection; what came back and whether the relay closed it. */
function upgrade(headers: string[], extra: Buffer = Buffer.alloc(0), waitMs = 3000): Promise<{ status: number; head: string; body: string; closed: boolean; reset: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(relay.agentsPort, '127.0.0.1')
    const chunks: Buffer[] = []
    let done = false
    const finish = (closed: boolean, reset = false): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      const text = Buffer.concat(chunks).toString('latin1')
      const split = text.indexOf('\r\n\r\n')
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)
      resolve({ status, head: split === -1 ? text : text.slice(0, split), body: split === -1 ? '' : text.slice(split + 4), closed, reset })
    }
    const timer = setTimeout(() => finish(false), waitMs)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('close', () => finish(true))
    socket.on('error', () => finish(true, true))
    socket.write(Buffer.concat([Buffer.from([
      'GET / HTTP/1.1', 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade',
      'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', ...headers, '', '',
    ].join('\r\n'), 'latin1'), extra]))
  })
}

function relayRssKb(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${relay.pid}/status`, 'utf8'))
  return Number(m?.[1] ?? 0)
}

t.test('A1: no, wrong, 1-byte, prefix-correct and over-long tokens: 401 before any 101, one generic body, no timing-safe-equal throw', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['no Authorization', []],
    ['Bearer wrong', ['Authorization: Bearer wrong']],
    ['a 1-byte token', ['Authorization: Bearer x']],
    ['the token minus its last character', [`Authorization: Bearer ${token.slice(0, -1)}`]],
    ['the token plus one character', [`Authorization: Bearer ${token}x`]],
    ['a 12 KiB token', [`Authorization: Bearer ${'A'.repeat(12 * 1024)}`]],
    ['Basic instead of Bearer', [`Authorization: Basic ${Buffer.from(`laptop:${token}`).toString('base64')}`]],
  ]
  const bodies = new Set<string>()
  for (const [name, headers] of cases) {
    const res = await upgrade(headers)
    t.equal(res.status, 401, `${name}: 401`)
    t.notMatch(res.head, /101|sec-websocket-accept/i, `${name}: no 101`)
    t.ok(res.closed, `${name}: the relay closed the connection`)
    bodies.add(res.body)
  }
  t.same([...bodies], ['unauthorized\n'], 'the same body every time')
  t.notMatch(relay.output(), /ERR_CRYPTO|timingSafeEqual|stack/i, 'no crypto or other exception in the relay log')
  t.equal(relay.current.running, true)
})

t.test('A1: a 64 KiB token (over the 16 KiB header limit) gets no 101 and the relay serves on', async (t) => {
  const res = await upgrade([`Authorization: Bearer ${'A'.repeat(64 * 1024)}`])
  t.not(res.status, 101, `answered ${res.status || 'nothing'}`)
  t.ok(res.closed, 'connection closed')
  t.equal(relay.current.running, true)
})

t.test('A1: a 64 KiB token is answered with an HTTP status, not a silent close', async (t) => {
  const res = await upgrade([`Authorization: Bearer ${'A'.repeat(64 * 1024)}`])
  t.equal(res.status, 431, 'request headers too large')
  t.equal(res.body, 'PL_ERR_HTTP_BAD_REQUEST: request headers too large\n')
  const garbage = await upgrade(['Authorization Bearer no-colon'])
  t.equal(garbage.status, 400, 'a malformed header line gets 400')
})

t.test('A8: X-Client-Cert, X-SSL-Client-Verify, X-Agent-Id and X-Forwarded-Client-Cert are ignored: 401', async (t) => {
  const pem = '-----BEGIN CERTIFICATE-----MIIB-----END CERTIFICATE-----'
  const res = await upgrade([
    `X-Client-Cert: ${pem}`, 'X-SSL-Client-Verify: SUCCESS', 'X-Agent-Id: laptop',
    'X-Forwarded-Client-Cert: Hash=abc;Subject="CN=laptop";URI=spiffe://laptop', 'X-Forwarded-For: 10.0.0.1',
    'X-Porchlight-Agent: laptop',
  ])
  t.equal(res.status, 401)
  t.equal(res.body, 'unauthorized\n')
  t.equal((await relay.connectedAgents()).length, 0, 'no session was created')
})

t.test('A9: a recorded hello replayed without the token on a new connection gets 401 and no session', async (t) => {
  // The hello carries no credential: the upgrade's token (or certificate) is the credential, so the
  // bytes of a real agent's first mux frames (SYN + hello) buy nothing on their own.
  const hello = Buffer.from(JSON.stringify({ type: 'hello', version: 1, agent_version: 'replayed' }))
  const mux = Buffer.alloc(12 + 4 + hello.length)
  mux.writeUInt8(0, 0); mux.writeUInt8(0, 1); mux.writeUInt16BE(1, 2); mux.writeUInt32BE(1, 4); mux.writeUInt32BE(4 + hello.length, 8)
  mux.writeUInt32BE(hello.length, 12); hello.copy(mux, 16)
  const wsFrame = Buffer.concat([Buffer.from([0x82, 0x80 | mux.length, 0, 0, 0, 0]), mux]) // masked with a zero key
  for (const attempt of ['first replay', 'second replay']) {
    const res = await upgrade([], wsFrame)
    t.equal(res.status, 401, `${attempt}: 401`)
  }
  t.equal((await relay.connectedAgents()).length, 0)
})

/** A raw WebSocket upgrade with the real token; resolves with the socket right after the 101. */
function authedSocket(extraHeaders: string[] = []): Promise<{ socket: Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(relay.agentsPort, '127.0.0.1')
    let buf = ''
    socket.on('error', reject)
    socket.on('data', function onData(c: Buffer) {
      buf += c.toString('latin1')
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      socket.off('data', onData)
      if (!buf.startsWith('HTTP/1.1 101')) reject(new Error(buf.slice(0, 200)))
      else resolve({ socket, head: buf.slice(0, end) })
    })
    socket.write([
      'GET / HTTP/1.1', 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', `Authorization: Bearer ${token}`, ...extraHeaders, '', '',
    ].join('\r\n'))
  })
}

/** Reads server WebSocket frames until a close frame; returns its code and how long it took. */
function closeCode(socket: Socket, timeoutMs: number): Promise<{ code: number | null; ms: number; frames: Buffer[] }> {
  const started = Date.now()
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0)
    const frames: Buffer[] = []
    const done = (code: number | null): void => { clearTimeout(timer); socket.destroy(); resolve({ code, ms: Date.now() - started, frames }) }
    const timer = setTimeout(() => done(null), timeoutMs)
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c])
      while (buf.length >= 2) {
        let len = buf[1]! & 0x7f
        let off = 2
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4 }
        if (buf.length < off + len) return
        const opcode = buf[0]! & 0x0f
        const payload = buf.subarray(off, off + len)
        buf = buf.subarray(off + len)
        if (opcode === 0x8) return done(payload.length >= 2 ? payload.readUInt16BE(0) : 1005)
        frames.push(Buffer.from(payload))
      }
    })
    socket.on('close', () => done(null))
  })
}

/** A masked binary frame header announcing `length` payload bytes (64-bit length form). */
function bigFrameHeader(length: number): Buffer {
  const h = Buffer.alloc(14)
  h[0] = 0x82
  h[1] = 0x80 | 127
  h.writeBigUInt64BE(BigInt(length), 2)
  return h // mask key 0,0,0,0 in bytes 10..13
}

t.test('A11 (a, b): a 200 MB message and a 4 MiB + 1 message get close 1009 on their header; RSS grows < 20 MB', async (t) => {
  const before = relayRssKb()
  for (const bytes of [200 * 1024 * 1024, 4 * 1024 * 1024 + 1]) {
    const { socket } = await authedSocket()
    const closing = closeCode(socket, 5000)
    socket.write(Buffer.concat([bigFrameHeader(bytes), Buffer.alloc(64 * 1024)]))
    const { code, ms } = await closing
    t.equal(code, 1009, `${bytes} bytes announced: close 1009 after ${ms} ms`)
  }
  const grewKb = relayRssKb() - before
  t.ok(grewKb < 20 * 1024, `relay RSS grew ${grewKb} kB`)
  t.equal(relay.current.running, true)
})

t.test('A11 (c): a mux DATA header announcing 0xFFFFFFFF bytes: GoAway(protocol error), then the session closes', async (t) => {
  const { socket } = await authedSocket()
  const closing = closeCode(socket, 5000)
  const mux = Buffer.alloc(12)
  mux.writeUInt8(0, 0); mux.writeUInt8(0, 1); mux.writeUInt16BE(1, 2); mux.writeUInt32BE(1, 4); mux.writeUInt32BE(0xffffffff, 8)
  socket.write(Buffer.concat([Buffer.from([0x82, 0x80 | 12, 0, 0, 0, 0]), mux]))
  const { code, frames, ms } = await closing
  // The relay sends GoAway(protocol error) and drops the link (close frame or TCP close).
  t.ok(ms < 2000 && code !== 1009, `link closed after ${ms} ms (close code ${code ?? 'none, TCP close'})`)
  const goAway = frames.map((f) => f.subarray(0, 12)).find((f) => f.length === 12 && f[1] === 3)
  t.ok(goAway, 'a GoAway frame came first')
  t.equal(goAway?.readUInt32BE(8), 1, 'GoAway code 1 (protocol error)')
  t.equal(relay.current.running, true)
})

t.test('A11 (d): permessage-deflate is never negotiated', async (t) => {
  const { socket, head } = await authedSocket(['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits'])
  socket.destroy()
  t.notMatch(head, /sec-websocket-extensions/i)
  const ws = new WebSocket(relay.agentsUrl, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: true })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  t.equal(ws.extensions, '', 'a ws client offering it gets none')
  ws.terminate()
})

t.test('A11 (e): an upgrade with 2,001 headers gets a 4xx or a close, never a 101, and the relay serves on', async (t) => {
  const junk = Array.from({ length: 2001 }, (_, i) => `x${i}: 1`)
  const res = await upgrade(junk)
  t.not(res.status, 101)
  t.ok(res.closed)
  t.equal(relay.current.running, true)
  const ws = new WebSocket(relay.agentsUrl, { headers: { authorization: `Bearer ${relay.tokens['spare']}` } })
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  ws.terminate()
  t.pass('a legitimate agent still connects')
})

t.test('A11 (e): 101 header lines with a valid token among them are refused with 431, never 101', async (t) => {
  // Short lines, so the request stays under the 16 KiB header limit and only the line count decides.
  const junk = Array.from({ length: 101 }, (_, i) => `x${i}: 1`)
  const res = await upgrade([`Authorization: Bearer ${relay.tokens['spare']}`, ...junk])
  t.equal(res.status, 431)
  t.match(res.body, /more than 100 header lines/)
  const last = await upgrade([...junk, `Authorization: Bearer ${relay.tokens['spare']}`])
  t.equal(last.status, 431, 'the token after the excess lines does not get in either')
})

t.test('A14: another agent cannot claim a host bound to X, while X is online or offline; offline X serves 503, never the claimant', async (t) => {
  const xOrigin = await startHttpOrigin(t, { '/': (_req, res) => res.end('x origin') })
  const x = await startAgent(t, relay, { name: 'laptop', tunnels: [{ http: 'a', to: xOrigin.url }] })
  const y = await FakeAgent.connect(t, relay.agentsUrl, relay.tokens['intruder']!)
  await y.hello()
  let yStreams = 0
  y.answer = (_head, stream) => { yStreams++; stream.destroy() }

  const online = await y.publishHttp(['a.localhost'])
  t.match(online, [{ id: 'a.localhost', ok: false, code: 'PL_ERR_POLICY_HOST_DENIED' }], 'X online: denied')
  const served = await visit(relay.publicPort, { host: 'a.localhost' })
  t.equal(served.text, 'x origin', "X's routing is unaffected")

  await x.kill('SIGKILL')
  const deadline = Date.now() + 5000
  while ((await relay.connectedAgents()).some((a) => a.name === 'laptop') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  const offline = await y.publishHttp(['a.localhost'])
  t.match(offline, [{ id: 'a.localhost', ok: false, code: 'PL_ERR_POLICY_HOST_DENIED' }], 'X offline: denied')
  const res = await visit(relay.publicPort, { host: 'a.localhost' })
  t.ok([502, 503, 404].includes(res.status), `X offline: ${res.status}`)
  t.notMatch(res.text, /x origin/)
  t.equal(yStreams, 0, "no visitor request ever reached the claimant")
})
