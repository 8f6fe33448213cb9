import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer, connect } from 'node:net'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { createLogger } from '@porchlight/shared/log'
import { hmac } from '../../src/cluster/keys.js'
import { Leases, type LeaseOwner } from '../../src/cluster/leases.js'

// Fencing tokens against a real redis-server: within what a relay saw of a lease, a lower token is
// never taken (a late or stale answer does not bring a previous owner back); once that lease cannot
// still be in Redis, the lower token is Redis's truth after it lost its data, and is taken.
const TTL_MS = 1_000
const A: LeaseOwner = { agent: 'a', instance: 'ia' }
const B: LeaseOwner = { agent: 'b', instance: 'ib' }
const log = createLogger({ name: 'test', level: 'silent' })
const tagKey = randomBytes(32)

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function startRedis(t: Test): Promise<Redis> {
  const port = await freePort()
  const proc = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', t.testdir(), '--loglevel', 'warning'], { stdio: 'ignore' })
  t.teardown(() => { proc.kill('SIGKILL') })
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (up) break
    await new Promise((r) => setTimeout(r, 50))
  }
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
  t.teardown(() => redis.disconnect())
  return redis
}

/** One relay's leases; `held` is what it renews, `lost` what it was told it lost. */
function relay(redis: Redis, held: Array<{ resource: string } & LeaseOwner> = []) {
  const lost: string[] = []
  const leases = new Leases({ redis, tagKey, ttlMs: TTL_MS, log, prefix: 'test:lease:', held: () => held, onLost: (resource, owner, holder) => lost.push(`${resource} ${owner.agent} ${String(holder)}`) })
  return { leases, lost, held }
}

/** A lease value as any member of the cluster writes it (tagged with the cluster's key). */
const valueOf = (resource: string, o: LeaseOwner, token: number): string => `${o.agent}/${o.instance} ${token} ${hmac(tagKey, `${resource} ${o.agent}/${o.instance} ${token}`)}`

t.test('a lower token: refused while the lease seen may be in Redis, taken once it cannot be', async (t) => {
  const redis = await startRedis(t)
  const { leases } = relay(redis)
  await redis.set('test:lease:fence', '100')
  t.same(await leases.claim('host:x', B), { ok: true, token: 101 }, 'b takes the lease with token 101')
  // Redis now answers an older lease of a's (a stale answer, or a Redis that lost the newer one).
  await redis.set('test:lease:host:x', valueOf('host:x', A, 7), 'PX', 10_000)
  t.same(await leases.claim('host:x', A), { ok: false, code: 'PL_ERR_LEASE_HELD', holder: 'a newer lease' }, 'a is refused: its token 7 is older than the 101 seen here')
  t.equal(leases.serves('host:x', A), false, 'a serves nothing here')
  t.equal(leases.serves('host:x', B), true, 'b still serves within its lease')
  await new Promise((r) => setTimeout(r, TTL_MS + 200))
  t.equal(leases.serves('host:x', B), false, 'past its lease, b serves nothing either (no renewal)')
  t.same(await leases.claim('host:x', A), { ok: true, token: 7 }, 'b\'s lease cannot be in Redis any more: a\'s token 7 is taken')
  t.equal(leases.serves('host:x', A), true, 'and a serves')
})

t.test('the counter after a wipe: Redis\'s clock in ms, and never at or below a token this relay saw', async (t) => {
  const redis = await startRedis(t)
  const { leases } = relay(redis)
  await redis.set('test:lease:fence', '41')
  t.same(await leases.claim('host:x', A), { ok: true, token: 42 }, 'a running counter counts on')
  await redis.flushall()
  const before = Date.now()
  const first = await leases.claim('host:y', A)
  const token = first.ok ? first.token : 0
  t.ok(token >= before - 60_000 && token <= Date.now() + 60_000, `wiped: the next token is Redis's clock in ms (${token}, Date.now() ${before})`)
  t.equal(await redis.get('test:lease:fence'), String(token), 'and the counter goes on from there')
  // A counter that came back below what this relay saw (a replica behind, a clock set back).
  await redis.set('test:lease:fence', '5')
  t.same(await leases.claim('host:z', B), { ok: true, token: token + 1 }, 'the next token is one above the largest seen here, not 6')
})

t.test('Redis wiped under a held lease: every relay keeps the owner serving, nobody is told it lost', async (t) => {
  const redis = await startRedis(t)
  const held = [{ resource: 'host:x', ...A }]
  const r1 = relay(redis, held)
  const r2 = relay(redis, held)
  await redis.set('test:lease:fence', '41')
  t.same(await r1.leases.claim('host:x', A), { ok: true, token: 42 }, 'a takes the lease through the first relay')
  t.same(await r2.leases.claim('host:x', A), { ok: true, token: 42 }, 'the same lease through the second relay')
  await redis.flushall()
  await r2.leases.renewAll()
  const taken = await redis.get('test:lease:host:x')
  t.match(taken, /^a\/ia \d{13,} /, `r2 found the lease gone and took it again for a, with a clock-sized token: ${String(taken)}`)
  // r1 still knows the value from before the wipe: its renewal finds a's newer one and renews that.
  await r1.leases.renewAll()
  t.same([r1.lost, r2.lost], [[], []], 'no relay said a lost the lease')
  t.ok(r1.leases.serves('host:x', A) && r2.leases.serves('host:x', A), 'a serves on both')
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, TTL_MS / 3))
    await Promise.all([r1.leases.renewAll(), r2.leases.renewAll()])
  }
  t.ok(r1.leases.serves('host:x', A) && r2.leases.serves('host:x', A), 'a lease later, renewed by both, a still serves on both')
  t.equal(await redis.get('test:lease:host:x'), taken, 'the same value in Redis')
  t.same([r1.lost, r2.lost], [[], []], 'still nobody told')
})
