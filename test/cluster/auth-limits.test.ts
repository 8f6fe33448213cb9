import { execFileSync } from 'node:child_process'
import http from 'node:http'
import t from 'tap'
import { runCli } from '../e2e/harness/processes.js'
import { startCluster, startClusterAgent, startEchoOrigin, startRedis, waitForLinks, type ClusterRelay } from './harness.js'

// Done-when 7: wrong Basic guesses from one address, spread round-robin over three relays, are
// counted in Redis: 429 after the configured total (10 per 5 minutes per address and site, ±1).
// Another address still logs in; Redis keys name no address or user; with Redis SIGKILLed each
// relay still limits on its own (the insurance table) and keeps serving.
const PASSWORD = 'correct horse battery staple'
const LIMIT = 10

interface Answer { status: number; ms: number; agent: string | null }

function guess(relay: ClusterRelay, from: string, password: string): Promise<Answer> {
  const started = Date.now()
  return new Promise((resolve) => {
    const req = http.get({
      host: relay.ip, port: relay.ports.public, path: '/', localAddress: from, agent: false, timeout: 10_000,
      headers: { host: 'one.localhost', authorization: `Basic ${Buffer.from(`alice:${password}`).toString('base64')}` },
    }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => {
        let agent: string | null = null
        try { agent = (JSON.parse(body) as { agent: string }).agent } catch { /* a relay page */ }
        resolve({ status: res.statusCode ?? 0, ms: Date.now() - started, agent })
      })
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', () => resolve({ status: 0, ms: Date.now() - started, agent: null }))
  })
}

t.test('basic-auth failures are counted across relays; Redis down: each relay still limits', async (t) => {
  const hashed = await runCli('agent', ['hash-password', '--password-stdin'], { input: PASSWORD })
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: ['one'] })
  const origin = await startEchoOrigin(t, 'one')
  await startClusterAgent(t, relays, 'one', origin, {}, { access: { basic: { user: 'alice', password_hash: hashed.stdout.trim() } } })
  t.ok((await waitForLinks(relays, ['one'], 10_000)).ok, 'the agent is linked to every relay')

  // One at a time, round-robin: r1, r2, r3, r1, ... from 127.0.0.1.
  const statuses: number[] = []
  for (let i = 0; i < LIMIT + 4; i++) statuses.push((await guess(relays[i % 3]!, '127.0.0.1', `wrong-${i}`)).status)
  const first429 = statuses.indexOf(429)
  t.ok(first429 >= LIMIT - 1 && first429 <= LIMIT + 1, `the first 429 comes after ${first429} wrong guesses over 3 relays (configured total ${LIMIT}, ±1): ${statuses.join(',')}`)
  t.same(statuses.slice(0, first429).filter((s) => s !== 401), [], 'every guess before it was a plain 401')
  t.same(statuses.slice(first429).filter((s) => s !== 429), [], 'every guess after it is 429, on every relay')
  const right = await guess(relays[0]!, '127.0.0.1', PASSWORD)
  t.equal(right.status, 429, 'even the right password is refused from the limited address')

  // No lockout of everyone: another address logs in on every relay.
  const others = await Promise.all(relays.map((r) => guess(r, '127.0.0.2', PASSWORD)))
  t.same(others.map((o) => [o.status, o.agent]), [[200, 'one'], [200, 'one'], [200, 'one']], 'another address logs in on every relay')

  // What Redis holds: namespaced, hashed keys; no address, host or user name.
  const keys = execFileSync('redis-cli', ['-p', String(redis.port), '--scan', '--pattern', '*limit*'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean)
  t.ok(keys.length >= 1, `limit keys in Redis: ${keys.join(' ')}`)
  t.same(keys.filter((k) => !/^porchlight:limit:basic:[A-Za-z0-9_-]{43}$/.test(k)), [], 'every key is porchlight:limit:basic:<HMAC>')
  t.same(keys.filter((k) => /127\.0\.0|alice|localhost/.test(k)), [], 'no address, user or host in a key')
  const count = execFileSync('redis-cli', ['-p', String(redis.port), 'get', keys[0]!], { encoding: 'utf8' }).trim()
  t.ok(Number(count) >= LIMIT, `the shared counter holds the total (${count})`)

  // Redis SIGKILLed: no request waits on it; each relay limits with its own table.
  await redis.handle.kill('SIGKILL')
  const open = await Promise.all(relays.map((r) => guess(r, '127.0.0.4', PASSWORD)))
  t.same(open.map((o) => o.status), [200, 200, 200], 'the right password still logs in on every relay')
  const down: Answer[] = []
  for (let i = 0; i < LIMIT + 2; i++) down.push(await guess(relays[0]!, '127.0.0.3', `down-${i}`))
  const downStatuses = down.map((d) => d.status)
  t.same(downStatuses.slice(0, LIMIT), Array(LIMIT).fill(401), 'r1 answers the first guesses with 401')
  t.same(downStatuses.slice(LIMIT), [429, 429], `then 429: r1 limits on its own (${downStatuses.join(',')})`)
  const slowest = Math.max(...down.map((d) => d.ms))
  t.ok(slowest < 3_000, `no guess waited on the dead Redis (slowest ${slowest} ms)`)
  t.equal((await guess(relays[1]!, '127.0.0.3', 'down-x')).status, 401, 'r2 counts its own: the address is not yet limited there')
})
