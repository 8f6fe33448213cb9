import net from 'node:net'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { bypassesProxy, connectRequest, connectThroughProxy, parseConnectReply, proxyFor } from '../src/proxy.js'

const WSS = new URL('wss://tunnel.example.com/_porchlight/connect')
const WS = new URL('ws://tunnel.example.com:7443/')

t.test('which proxy a relay URL goes through', async (t) => {
  const table: Array<[string, URL, string | false | null, NodeJS.ProcessEnv, string | null]> = [
    ['no proxy anywhere', WSS, null, {}, null],
    ['HTTPS_PROXY for wss', WSS, null, { HTTPS_PROXY: 'http://proxy.corp:3128' }, 'http://proxy.corp:3128/'],
    ['https_proxy wins over HTTPS_PROXY', WSS, null, { https_proxy: 'http://low:1', HTTPS_PROXY: 'http://up:2' }, 'http://low:1/'],
    ['HTTP_PROXY is not for wss', WSS, null, { HTTP_PROXY: 'http://proxy:3128' }, null],
    ['HTTP_PROXY for ws', WS, null, { HTTP_PROXY: 'http://proxy:3128' }, 'http://proxy:3128/'],
    ['HTTPS_PROXY is not for ws', WS, null, { HTTPS_PROXY: 'http://proxy:3128' }, null],
    ['no scheme means http://', WSS, null, { HTTPS_PROXY: 'proxy.corp:8080' }, 'http://proxy.corp:8080/'],
    ['empty variable is unset', WSS, null, { https_proxy: ' ', HTTPS_PROXY: 'http://p:1' }, 'http://p:1/'],
    ['agent.yaml proxy wins over env', WSS, 'http://cfg:3128', { HTTPS_PROXY: 'http://env:1' }, 'http://cfg:3128/'],
    ['agent.yaml proxy for ws too', WS, 'http://cfg:3128', {}, 'http://cfg:3128/'],
    ['proxy: false ignores env', WSS, false, { HTTPS_PROXY: 'http://env:1' }, null],
    ['NO_PROXY suffix', WSS, null, { HTTPS_PROXY: 'http://p:1', NO_PROXY: 'example.com' }, null],
    ['no_proxy leading dot', WSS, null, { HTTPS_PROXY: 'http://p:1', no_proxy: '.example.com' }, null],
    ['NO_PROXY applies to agent.yaml proxy', WSS, 'http://cfg:1', { NO_PROXY: 'tunnel.example.com' }, null],
    ['NO_PROXY other domain', WSS, null, { HTTPS_PROXY: 'http://p:1', NO_PROXY: 'other.com,ample.com' }, 'http://p:1/'],
    ['NO_PROXY star', WSS, null, { HTTPS_PROXY: 'http://p:1', NO_PROXY: '*' }, null],
  ]
  for (const [name, url, configured, env, want] of table) t.equal(proxyFor(url, configured, env)?.href ?? null, want, name)
  t.throws(() => proxyFor(WSS, null, { HTTPS_PROXY: 'socks5://p:1080' }), { code: 'PL_ERR_LINK_PROXY', message: /HTTPS_PROXY: only http:\/\/ proxies/ })
  t.throws(() => proxyFor(WSS, null, { HTTPS_PROXY: 'https://p:443' }), { code: 'PL_ERR_LINK_PROXY' })
  t.throws(() => proxyFor(WSS, null, { HTTPS_PROXY: 'http://p:1/path' }), { code: 'PL_ERR_LINK_PROXY' })
})

t.test('NO_PROXY entries', async (t) => {
  const table: Array<[string, string, boolean]> = [
    ['wss://relay.example.com', 'relay.example.com', true],
    ['wss://relay.example.com', 'RELAY.example.com.', true],
    ['wss://relay.example.com', 'xample.com', false],
    ['wss://relay.example.com', '*.example.com', true],
    ['wss://relay.example.com', 'example.com:443', true],
    ['wss://relay.example.com', 'example.com:7443', false],
    ['wss://relay.example.com:7443', 'example.com:7443', true],
    ['ws://127.0.0.1:8080', '127.0.0.1', true],
    ['ws://127.0.0.1:8080', '0.0.1', false],
    ['ws://[::1]:8080', '::1', true],
    ['ws://[::1]:8080', '[::1]:8080', true],
    ['ws://[::1]:8080', '[::1]:9', false],
    ['wss://relay.example.com', ' , ,', false],
    ['wss://relay.example.com', 'a.com relay.example.com', true],
  ]
  for (const [url, noProxy, want] of table) t.equal(bypassesProxy(new URL(url), noProxy), want, `${url} / ${JSON.stringify(noProxy)}`)
})

t.test('CONNECT reply parsing', async (t) => {
  t.same(parseConnectReply(Buffer.from('HTTP/1.1 200 Connection established\r\n')), { state: 'incomplete' })
  t.same(parseConnectReply(Buffer.from('HTT')), { state: 'incomplete' })
  const done = parseConnectReply(Buffer.from('HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n'))
  t.match(done, { state: 'done', status: 200, reason: 'Connection established' })
  t.equal(done.state === 'done' && done.rest.length, 0)
  t.match(parseConnectReply(Buffer.from('HTTP/1.0 200\r\n\r\nABC')), { state: 'done', status: 200, reason: '' })
  const extra = parseConnectReply(Buffer.from('HTTP/1.0 200 OK\r\n\r\nABC'))
  t.equal(extra.state === 'done' && extra.rest.toString(), 'ABC')
  t.match(parseConnectReply(Buffer.from('HTTP/1.1 403 Access violation\r\n\r\n')), { state: 'done', status: 403, reason: 'Access violation' })
  t.match(parseConnectReply(Buffer.from('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n')), { status: 407 })
  t.throws(() => parseConnectReply(Buffer.from('SSH-2.0-OpenSSH\r\n')), /not HTTP/)
  t.throws(() => parseConnectReply(Buffer.from('HTTP/2 200\r\n\r\n')), /malformed status line/)
  t.throws(() => parseConnectReply(Buffer.from('HTTP/1.1 20 OK\r\n\r\n')), /malformed status line/)
  t.throws(() => parseConnectReply(Buffer.from('HTTP/1.1 200 O\x00K\r\n\r\n')), /malformed status line/)
  t.throws(() => parseConnectReply(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n'), Buffer.alloc(17 * 1024, 'a')])), /longer than 16384 bytes/)
  t.throws(() => parseConnectReply(Buffer.from(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(100)}\r\n\r\n`), 64), /longer than 64 bytes/)
})

t.test('CONNECT request: authority, and credentials only when given', async (t) => {
  t.equal(connectRequest(new URL('http://p:3128'), 'relay.example.com', 443), 'CONNECT relay.example.com:443 HTTP/1.1\r\nHost: relay.example.com:443\r\n\r\n')
  t.equal(connectRequest(new URL('http://p:3128'), '::1', 8443), 'CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n')
  const auth = connectRequest(new URL('http://al%40ice:p%3Ass@p:3128'), 'r', 1)
  t.match(auth, `Proxy-Authorization: Basic ${Buffer.from('al@ice:p:ss').toString('base64')}\r\n`)
})

/** A one-shot fake proxy: answers the first CONNECT head with `reply` (or nothing). */
async function fakeProxy(t: Test, reply: string | null): Promise<{ url: URL; requests: string[] }> {
  const requests: string[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => undefined)
    let head = ''
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      requests.push(head)
      if (reply !== null) socket.write(reply)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()); for (const s of sockets) s.destroy() }))
  return { url: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`), requests }
}

t.test('connectThroughProxy: 200 gives the tunnel, anything else a named PL_ERR_LINK_PROXY', async (t) => {
  const ok = await fakeProxy(t, 'HTTP/1.1 200 Connection established\r\n\r\n')
  const socket = await connectThroughProxy(ok.url, 'relay.example.com', 443, { timeoutMs: 2000 })
  t.match(ok.requests[0], /^CONNECT relay\.example\.com:443 HTTP\/1\.1\r\n/)
  socket.destroy()

  const refused = await fakeProxy(t, 'HTTP/1.1 403 Filtered\r\n\r\n')
  await t.rejects(connectThroughProxy(refused.url, 'relay.example.com', 443, { timeoutMs: 2000 }), { code: 'PL_ERR_LINK_PROXY', message: /refused CONNECT to relay\.example\.com:443 with 403 Filtered/ })

  const garbage = await fakeProxy(t, 'SSH-2.0-OpenSSH_9.2\r\n')
  await t.rejects(connectThroughProxy(garbage.url, 'r', 443, { timeoutMs: 2000 }), { code: 'PL_ERR_LINK_PROXY', message: /not HTTP/ })

  const huge = await fakeProxy(t, `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20_000)}`)
  await t.rejects(connectThroughProxy(huge.url, 'r', 443, { timeoutMs: 2000 }), { code: 'PL_ERR_LINK_PROXY', message: /longer than/ })

  const early = await fakeProxy(t, 'HTTP/1.1 200 OK\r\n\r\nsurprise')
  await t.rejects(connectThroughProxy(early.url, 'r', 443, { timeoutMs: 2000 }), { code: 'PL_ERR_LINK_PROXY', message: /bytes after its 200/ })

  const silent = await fakeProxy(t, null)
  await t.rejects(connectThroughProxy(silent.url, 'r', 443, { timeoutMs: 200 }), { code: 'PL_ERR_LINK_PROXY', message: /no answer to CONNECT r:443 within 200 ms/ })

  // A port nobody listens on: unreachable, said so.
  const closed = net.createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => resolve()))
  await t.rejects(connectThroughProxy(new URL(`http://127.0.0.1:${port}`), 'r', 443, { timeoutMs: 2000 }), { code: 'PL_ERR_LINK_PROXY', message: new RegExp(`proxy 127\\.0\\.0\\.1:${port}: unreachable: .*ECONNREFUSED`) })
})
