import { readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { encodeProxyV2 } from '@porchlight/shared/net'
import { ChildHandle, childEnv } from '../e2e/harness/child.js'
import { ROOT, startAgent } from '../e2e/harness/processes.js'
import { pollUntil } from '../e2e/harness/wait.js'
import { childDir } from '../e2e/harness/workdir.js'
import { freePortOn, HAPROXY_BIN, startCluster, startEchoOrigin, startRedis, waitForLinks } from './harness.js'

// deploy/examples/haproxy.cfg, addresses rewritten to loopback, in front of three relays with
// listen.public_proxy_protocol: the visitor's address (PROXY v2) reaches the access rules, and an
// agent configured with the balancer's address links to every member directly.

/** GET / for one.localhost on host:port from the local address `from`; the status, 0 when closed. */
function visitFrom(port: number, from: string, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/', headers: { host: 'one.localhost' }, localAddress: from, agent: false, timeout: 5000 }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(0))
  })
}

/** Raw bytes to host:port from `from`; resolves with the status line, or '' when closed without one. */
function rawFrom(host: string, port: number, from: string, bytes: Buffer): Promise<string> {
  return new Promise((resolve) => {
    // Written without a half-close: the visitor listener treats a half-closed request as abandoned.
    const s = connect({ host, port, localAddress: from }, () => s.write(bytes))
    let got = ''
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1')
      if (got.includes('\r\n')) s.destroy()
    })
    s.on('close', () => resolve(got.split('\r\n')[0] ?? ''))
    s.on('error', () => undefined)
    s.setTimeout(5000, () => s.destroy())
  })
}

t.test('HAProxy example: PROXY v2 carries the visitor address to allow_ips; an agent seeds through it', async (t) => {
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: ['one'], proxyProtocol: true, extra: { trust_proxy: ['127.0.0.1/32'] } })
  const { ports } = relays[0]!
  const front = { http: await freePortOn('127.0.0.1'), https: await freePortOn('127.0.0.1'), tcp: await freePortOn('127.0.0.1'), agents: await freePortOn('127.0.0.1') }
  const cfg = readFileSync(join(ROOT, 'deploy/examples/haproxy.cfg'), 'utf8')
    .replace('bind :80\n', `bind 127.0.0.1:${front.http}\n`).replace('bind :443\n', `bind 127.0.0.1:${front.https}\n`)
    .replace('bind :30000-30100\n', `bind 127.0.0.1:${front.tcp}\n`).replace('bind :7443\n', `bind 127.0.0.1:${front.agents}\n`)
    .replace(/10\.0\.0\.(\d):(80|443)\n/g, (_m, n: string) => `127.0.0.1${n}:${ports.public}\n`)
    .replace(/10\.0\.0\.(\d):7443\n/g, (_m, n: string) => `127.0.0.1${n}:${ports.agents}\n`)
    .replace(/10\.0\.0\.(\d)\n/g, (_m, n: string) => `127.0.0.1${n}\n`)
    .replaceAll('check port 7444', `check port ${ports.peer}`)
    .replace(/inter 1s fall 2 rise 2/g, 'inter 200 fall 1 rise 1')
    // The test machine's file limit, not the example's, bounds how many connections fit.
    .replace('maxconn 20000', 'maxconn 2000')
  t.notMatch(cfg, /10\.0\.0\.|bind :/, 'every address rewritten')
  const dir = childDir(t, 'haproxy')
  writeFileSync(join(dir, 'haproxy.cfg'), cfg)
  new ChildHandle(t, { label: 'haproxy', command: HAPROXY_BIN, args: ['-db', '-f', join(dir, 'haproxy.cfg')], env: childEnv(dir), cwd: dir })

  // The agent only knows the balancer's agents frontend; the relay it lands on names the members.
  const origin = await startEchoOrigin(t, 'one')
  await pollUntil(() => rawFrom('127.0.0.1', front.agents, '127.0.0.1', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), (line) => line.startsWith('HTTP/1.1 426'), { timeoutMs: 10_000 })
  await startAgent(t, relays[0]!.proc, {
    name: 'one',
    tunnels: [{ http: 'one', to: origin.url, access: { allow_ips: ['127.0.0.5/32'] } }],
    extra: { relay: `ws://127.0.0.1:${front.agents}` },
    env: { PORCHLIGHT_BACKOFF_MAX_MS: '500' },
  })
  t.ok((await waitForLinks(relays, ['one'], 10_000)).ok, 'seeded through HAProxy, linked to all three relays')

  const allowed = await pollUntil(() => visitFrom(front.http, '127.0.0.5'), (s) => s === 200, { timeoutMs: 10_000 })
  t.equal(allowed.value, 200, 'visitor 127.0.0.5 is allowed: the relay saw its address, not HAProxy\'s')
  const six = await Promise.all([1, 2, 3, 4, 5, 6].map(() => visitFrom(front.http, '127.0.0.5')))
  t.same(six, [200, 200, 200, 200, 200, 200], 'on every relay of the round robin')
  t.equal(await visitFrom(front.http, '127.0.0.6'), 403, 'visitor 127.0.0.6 is refused by allow_ips')

  // Directly at a relay: an untrusted address cannot claim another with a forged header (the
  // bytes reach the HTTP parser as they are), and a trusted proxy must send one.
  const forged = Buffer.concat([encodeProxyV2({ address: '127.0.0.5', port: 1234 }, { address: '127.0.0.11', port: ports.public }), Buffer.from('GET / HTTP/1.1\r\nHost: one.localhost\r\n\r\n')])
  t.equal(await rawFrom('127.0.0.11', ports.public, '127.0.0.7', forged), 'HTTP/1.1 400 Bad request', 'a PROXY header from an untrusted address is a bad request')
  t.equal(await rawFrom('127.0.0.11', ports.public, '127.0.0.1', Buffer.from('GET / HTTP/1.1\r\nHost: one.localhost\r\n\r\n')), '', 'a trusted proxy without a PROXY header is closed')
  t.equal(await rawFrom('127.0.0.11', ports.public, '127.0.0.1', forged), 'HTTP/1.1 200 OK', 'a trusted proxy\'s v2 header is read')
})
