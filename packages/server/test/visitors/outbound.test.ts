import t, { type Test } from 'tap'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { ReplyHead, readHead } from '@porchlight/shared/protocol'
import { parseOutboundRules } from '../../src/agents/outbound-policy.js'
import { expandOwnAddresses, handleForwardStream, type ForwardContext } from '../../src/visitors/outbound.js'
import { captureLogger, readAll, streamPair } from '../../../shared/test/net/helpers.js'

/** A destination server on loopback that counts connections (the egress spy) and greets. */
async function startDestination(t: Test, host = '127.0.0.1'): Promise<{ port: number; count: () => number }> {
  const sockets: Socket[] = []
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket)
    socket.on('error', () => undefined)
    socket.write('220 ready\r\n')
    socket.on('data', () => undefined)
    socket.on('end', () => socket.end('221 bye\r\n'))
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as AddressInfo).port, count: () => sockets.length }
}

/** Opens one forward stream: returns the agent's end and the parsed reply head. */
async function forward(host: string, port: number, ctx: ForwardContext): Promise<{ agentEnd: Duplex; reply: ReplyHead; handled: Promise<void> }> {
  const [agentEnd, relayEnd] = streamPair()
  agentEnd.on('error', () => undefined)
  const handled = handleForwardStream(relayEnd, { t: 'forward', host, port }, ctx)
  const reply = ReplyHead.parse(await readHead(agentEnd, 5_000))
  return { agentEnd, reply, handled }
}

function context(outbound: string[], extra: Partial<ForwardContext> = {}): ForwardContext & { lines: ReturnType<typeof captureLogger>['lines'] } {
  const { log, lines } = captureLogger()
  return { agent: 'laptop', rules: parseOutboundRules(outbound), log, relayOwnAddresses: new Set(), lines, ...extra }
}

t.test('an explicitly allowed loopback destination is dialled and bytes flow with half-close', async (t) => {
  const dest = await startDestination(t)
  const ctx = context([`127.0.0.1:${dest.port}`])
  const { agentEnd, reply, handled } = await forward('127.0.0.1', dest.port, ctx)
  await handled
  t.same(reply, { t: 'ok' })
  const all = readAll(agentEnd)
  agentEnd.end('QUIT\r\n')
  t.equal(await all, '220 ready\r\n221 bye\r\n', 'reply after our FIN still arrives')
  t.equal(dest.count(), 1)
})

t.test('D1: refusals on every open, no outbound connect, one warn line each', async (t) => {
  const dest = await startDestination(t)
  const lookups: string[] = []
  const ctx = context([`127.0.0.1:${dest.port}`, 'smtp.allowed.test:587'], {
    lookup: async (host) => { lookups.push(host); return ['127.0.0.1'] },
  })
  const first = await forward('127.0.0.1', dest.port, ctx)
  t.same(first.reply, { t: 'ok' }, 'allowed stream first')
  const refused: Array<[string, number]> = [
    ['evil.test', 587], ['smtp.allowed.test', 25], ['127.0.0.1', dest.port + 1], ['169.254.169.254', 80], ['::1', 22],
    ['10.0.0.1', 587], ['2130706433', dest.port], ['0x7f000001', dest.port], ['127.1', dest.port], ['localhost.', dest.port],
  ]
  for (const [host, port] of refused) {
    const { reply, agentEnd } = await forward(host, port, ctx)
    t.equal(reply.t, 'error', `${host}:${port} refused`)
    if (reply.t === 'error') t.equal(reply.code, 'PL_ERR_POLICY_DEST_DENIED')
    t.equal(await readAll(agentEnd), '', 'stream ended after the error head')
  }
  t.same(lookups, [], 'names not in the list are never resolved')
  t.equal(dest.count(), 1, 'only the allowed stream reached the destination')
  const warns = ctx.lines.filter((l) => l.msg === 'forward refused')
  t.equal(warns.length, refused.length)
  t.equal(warns[0]?.['agent'], 'laptop')
  t.equal(warns[0]?.['destination'], 'evil.test:587')
  t.equal(warns[0]?.level, 40, 'warn level')
})

t.test('D2: a listed name resolving to loopback, or to a mixed answer, is refused; one lookup per open', async (t) => {
  const dest = await startDestination(t)
  const answers = [['127.0.0.1'], ['93.184.215.14', '127.0.0.1'], ['127.0.0.1', '93.184.215.14']]
  const lookups: string[] = []
  const ctx = context([`smtp.allowed.test:${dest.port}`], {
    lookup: async (host) => { lookups.push(host); return answers[lookups.length - 1] ?? [] },
  })
  for (let i = 0; i < answers.length; i++) {
    const { reply } = await forward('SMTP.allowed.test.', dest.port, ctx)
    t.equal(reply.t, 'error')
    if (reply.t === 'error') t.equal(reply.code, 'PL_ERR_POLICY_DEST_DENIED')
  }
  t.same(lookups, ['smtp.allowed.test', 'smtp.allowed.test', 'smtp.allowed.test'], 'normalised name, resolved once per stream')
  t.equal(dest.count(), 0)
  t.match(ctx.lines.find((l) => l.msg === 'forward refused')?.['reason'], /resolved to 127\.0\.0\.1, a loopback address/)
})

t.test('a name resolving into an explicitly listed range is dialled at the checked address', async (t) => {
  const dest = await startDestination(t, '127.0.0.2')
  const ctx = context([`mail.internal.test:${dest.port}`, `127.0.0.0/8:${dest.port}`], {
    lookup: async () => ['127.0.0.2'],
  })
  const { reply, agentEnd } = await forward('mail.internal.test', dest.port, ctx)
  t.same(reply, { t: 'ok' })
  const all = readAll(agentEnd)
  agentEnd.end()
  t.equal(await all, '220 ready\r\n221 bye\r\n')
  t.equal(dest.count(), 1)
})

t.test('a name with several permitted addresses: the first that answers is used, in happy-eyeballs order (issue 14)', async (t) => {
  const dest = await startDestination(t, '127.0.0.3')
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(dest.port, '127.0.0.2', resolve))
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const ctx = context([`mail.internal.test:${dest.port}`, `127.0.0.0/8:${dest.port}`, `[::1]:${dest.port}`], {
    // 127.0.0.2 has nothing on the port (refused), ::1 neither; 127.0.0.3 answers.
    lookup: async () => ['127.0.0.2', '127.0.0.3', '::1'],
  })
  const { reply, agentEnd } = await forward('mail.internal.test', dest.port, ctx)
  t.same(reply, { t: 'ok' }, 'connected after refused attempts')
  const all = readAll(agentEnd)
  agentEnd.end()
  t.equal(await all, '220 ready\r\n221 bye\r\n')
  t.equal(dest.count(), 1)
  const open = ctx.lines.find((l) => l['msg'] === 'forward open')
  t.match(open, { address: '127.0.0.3', tried: 3 }, 'tried 127.0.0.2, then ::1 (families alternate), then 127.0.0.3')

  const none = context([`mail.internal.test:${dest.port + 1}`, `127.0.0.0/8:${dest.port + 1}`], { lookup: async () => ['127.0.0.2', '127.0.0.4'] })
  const dead = await forward('mail.internal.test', dest.port + 1, none)
  t.match(dead.reply, { t: 'error', code: 'PL_ERR_DIAL_FAILED' }, 'every address refused: one clear error')
  t.match(none.lines.find((l) => l['msg'] === 'forward refused'), { reason: /127\.0\.0\.2 ECONNREFUSED, 127\.0\.0\.4 ECONNREFUSED/ })
})

t.test('D7: nothing listening -> PL_ERR_DIAL_FAILED within 1 s; DNS failure and DNS timeout are answered too', async (t) => {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const deadPort = (probe.address() as AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))

  const ctx = context([`127.0.0.1:${deadPort}`, 'nx.test:25', 'slow.test:25'], {
    lookup: async (host) => {
      if (host === 'slow.test') return new Promise<string[]>(() => undefined)
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' })
    },
    connectTimeoutMs: 200,
  })
  const started = Date.now()
  const dead = await forward('127.0.0.1', deadPort, ctx)
  t.ok(Date.now() - started < 1_000, 'refused connect answered quickly')
  t.equal(dead.reply.t, 'error')
  if (dead.reply.t === 'error') {
    t.equal(dead.reply.code, 'PL_ERR_DIAL_FAILED')
    t.match(dead.reply.message, /ECONNREFUSED/)
  }
  const nx = await forward('nx.test', 25, ctx)
  t.same(nx.reply.t === 'error' ? nx.reply.code : nx.reply.t, 'PL_ERR_DNS_FAILED')
  const slowStarted = Date.now()
  const slow = await forward('slow.test', 25, ctx)
  t.same(slow.reply.t === 'error' ? slow.reply.code : slow.reply.t, 'PL_ERR_DNS_FAILED')
  t.ok(Date.now() - slowStarted < 1_000, 'lookup bounded by connectTimeoutMs')
})

t.test("the relay's own addresses are refused unless listed as a single address", async (t) => {
  const dest = await startDestination(t)
  const ctx = context([`127.0.0.0/8:${dest.port}`], { relayOwnAddresses: new Set(['127.0.0.1']) })
  const { reply } = await forward('127.0.0.1', dest.port, ctx)
  t.equal(reply.t, 'error')
  t.equal(dest.count(), 0)
})

t.test('expandOwnAddresses: a wildcard bind stands for every interface address', (t) => {
  const plain = expandOwnAddresses(new Set(['127.0.0.1']))
  t.same([...plain], ['127.0.0.1'])
  const wide = expandOwnAddresses(new Set(['0.0.0.0']))
  t.ok(wide.has('0.0.0.0'))
  t.ok(wide.size >= 1)
  t.end()
})

t.test('the agent giving up mid-dial leaves nothing behind', async (t) => {
  const dest = await startDestination(t)
  let release: (v: string[]) => void = () => undefined
  const ctx = context([`gate.test:${dest.port}`, `127.0.0.1:${dest.port}`], { lookup: () => new Promise<string[]>((resolve) => { release = resolve }) })
  const [agentEnd, relayEnd] = streamPair()
  agentEnd.on('error', () => undefined)
  const handled = handleForwardStream(relayEnd, { t: 'forward', host: 'gate.test', port: dest.port }, ctx)
  agentEnd.destroy()
  await new Promise((resolve) => setTimeout(resolve, 20))
  release(['127.0.0.1'])
  await handled
  t.equal(relayEnd.destroyed, true)
  t.equal(dest.count(), 0, 'no dial after the stream was reset')
})
