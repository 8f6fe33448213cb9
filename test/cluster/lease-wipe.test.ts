import { execFileSync } from 'node:child_process'
import t from 'tap'
import { RawAgent } from '../e2e/harness/raw-agent.js'
import { startAgent } from '../e2e/harness/processes.js'
import { pollUntil } from '../e2e/harness/wait.js'
import type { Scope } from '../e2e/harness/scope.js'
import { startCluster, startEchoOrigin, startRedis, visit, type ClusterRelay, type Outcome, type RedisProcess } from './harness.js'

// Issue 15: Redis loses its data (restarted without persistence, FLUSHALL, a new Redis) while the
// relays remember the leases they saw. The fencing-token counter is gone with it, yet tokens issued
// afterwards are larger than any before, so a relay that remembers the old lease neither refuses the
// new owner ("a newer lease") nor takes the name from the agent that still holds it.
const LEASE_TTL_MS = 3_000
const AGENTS = ['one', 'two']
/** The counter of a cluster that has run for a while: tokens before the wipe are far above 1. */
const TOKENS_BEFORE = 41

interface Published { id: string; ok: boolean; url?: string; code?: string; message?: string }

const cli = (redis: RedisProcess, ...args: string[]): string => execFileSync('redis-cli', ['-p', String(redis.port), ...args], { encoding: 'utf8' }).trim()
const tokenOf = (value: string): number => Number(value.split(' ')[1])

async function rawLinks(t: Scope, relays: ClusterRelay[], agent: string, instance: string): Promise<RawAgent[]> {
  return Promise.all(relays.map(async (r, i) => {
    const raw = await RawAgent.connect(t, r.agentsUrl, r.proc.tokens[agent]!, { 'x-porchlight-instance': instance, 'x-porchlight-link': `${instance}-${i}` })
    await raw.hello()
    return raw
  }))
}

/** Publishes `host` on every link at once; each relay's answer, `ok` or the code and message. */
async function publishAll(links: RawAgent[], host: string): Promise<string[]> {
  return Promise.all(links.map(async (raw) => {
    raw.send({ type: 'publish', tunnels: [{ id: 'web', kind: 'http', host }] })
    const r = ((await raw.next((m) => m['type'] === 'published', 10_000))['results'] as Published[])[0]!
    return r.ok ? 'ok' : `${String(r.code)} ${String(r.message)}`
  }))
}

t.test('the owner left, Redis is wiped, another agent claims at once: accepted on every relay', async (t) => {
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: AGENTS, hosts: ['*.localhost'], leaseTtlMs: LEASE_TTL_MS })
  cli(redis, 'set', 'porchlight:lease:fence', String(TOKENS_BEFORE))
  const one = await rawLinks(t, relays, 'one', 'wipe-one')
  t.same(await publishAll(one, 'gone'), ['ok', 'ok', 'ok'], 'one holds gone.localhost on every relay')
  const before = cli(redis, 'get', 'porchlight:lease:host:gone.localhost')
  t.ok(tokenOf(before) > TOKENS_BEFORE, `its lease: ${before}`)

  // One leaves; every relay still remembers its lease (valid there for up to a TTL) when Redis loses everything.
  for (const raw of one) raw.close()
  cli(redis, 'flushall')
  const two = await rawLinks(t, relays, 'two', 'wipe-two')
  t.same(await publishAll(two, 'gone'), ['ok', 'ok', 'ok'], 'two is accepted on every relay at the first publish (none answers "a newer lease")')
  const after = cli(redis, 'get', 'porchlight:lease:host:gone.localhost')
  t.match(after, /^two\/wipe-two \d+ /, 'the lease in Redis is two\'s')
  t.ok(tokenOf(after) > tokenOf(before), `with a larger token than any before the wipe (${tokenOf(before)} -> ${tokenOf(after)})`)
  // Renewals keep it two's: no relay later takes it from two because it remembers one's older lease.
  await new Promise((r) => setTimeout(r, LEASE_TTL_MS))
  t.match(cli(redis, 'get', 'porchlight:lease:host:gone.localhost'), /^two\/wipe-two /, 'a lease later, still two\'s')
  const lost = await Promise.all(two.map((raw) => raw.next((m) => m['code'] === 'PL_ERR_LEASE_LOST', 200).then((m) => String(m['message']), () => null)))
  t.same(lost, [null, null, null], 'and two was told of no lost lease')
})

t.test('Redis is wiped under a serving owner: it keeps the name; a claim right after the wipe takes it from it everywhere', async (t) => {
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: AGENTS, hosts: ['*.localhost'], leaseTtlMs: LEASE_TTL_MS })
  cli(redis, 'set', 'porchlight:lease:fence', String(TOKENS_BEFORE))
  const origin = await startEchoOrigin(t, 'one')
  const one = await startAgent(t, relays[0]!.proc, {
    name: 'one',
    tunnels: [{ http: 'kept', to: origin.url }],
    extra: { relay: relays[0]!.agentsUrl },
    env: { PORCHLIGHT_BACKOFF_MAX_MS: '500', PORCHLIGHT_REJECTED_RETRY_MS: '500' },
  })
  const ask = (r: ClusterRelay): Promise<Outcome> => visit(r.ports.public, 'kept.localhost', 3000, r.ip)
  const settled = await pollUntil(() => Promise.all(relays.map(ask)), (os) => os.every((o) => o.served?.agent === 'one'), { timeoutMs: 15_000, intervalMs: 200 })
  t.ok(settled.ok, 'every relay serves kept.localhost by one')
  const before = cli(redis, 'get', 'porchlight:lease:host:kept.localhost')

  // The wipe: one's relays find its lease gone at their next renewal and take it again for one.
  cli(redis, 'flushall')
  const wipedAt = Date.now()
  const outcomes: Outcome[] = []
  while (Date.now() - wipedAt < 2 * LEASE_TTL_MS) {
    outcomes.push(...(await Promise.all(relays.map(ask))))
    await new Promise((r) => setTimeout(r, 100))
  }
  t.ok(outcomes.length >= 60, `${outcomes.length} requests over two lease lifetimes after the wipe`)
  t.same(outcomes.filter((o) => o.served?.agent !== 'one').map((o) => `${o.status} ${o.error ?? ''}`), [], 'every one of them served by one')
  t.same(one.logs().filter((l) => l['code'] === 'PL_ERR_LEASE_LOST' || l['code'] === 'PL_ERR_LEASE_HELD').map((l) => l['msg']), [], 'one was told of no lost or held lease')
  const again = cli(redis, 'get', 'porchlight:lease:host:kept.localhost')
  t.match(again, /^one\//, `the lease is one's again: ${again}`)
  t.ok(tokenOf(again) > tokenOf(before), `with a larger token (${tokenOf(before)} -> ${tokenOf(again)})`)

  // Wiped again, and another agent claims before any renewal: it gets the name on every relay, and
  // the relays that renew one's lease find two's and take one's route down.
  const two = await rawLinks(t, relays, 'two', 'wipe-two')
  let answers: string[] = []
  let takenAt = 0
  // A renewal of one's lease can land between the wipe and the claim (a few ms of a second): then try again.
  for (let attempt = 1; attempt <= 3; attempt++) {
    cli(redis, 'flushall')
    answers = await publishAll(two, 'kept')
    takenAt = Date.now()
    if (answers.every((a) => a === 'ok')) break
    t.comment(`one's renewal came first: ${JSON.stringify(answers)}`)
    await new Promise((r) => setTimeout(r, 200))
  }
  t.same(answers, ['ok', 'ok', 'ok'], 'two is accepted on every relay')
  const stopped = await pollUntil(() => Promise.all(relays.map(ask)), (os) => os.every((o) => o.served?.agent !== 'one'), { timeoutMs: LEASE_TTL_MS, intervalMs: 100 })
  t.ok(stopped.ok, `one serves kept.localhost on no relay ${Date.now() - takenAt} ms after two took it`)
  const late: Outcome[] = []
  for (let i = 0; i < 10; i++) late.push(...(await Promise.all(relays.map(ask))))
  t.same(late.filter((o) => o.served?.agent === 'one').length, 0, `and none of ${late.length} requests afterwards`)
  const told = await pollUntil(async () => one.logs().filter((l) => l['code'] === 'PL_ERR_LEASE_LOST'), (ls) => ls.length >= 1, { timeoutMs: 5_000 })
  t.ok(told.ok, `one was told: ${told.value.map((l) => String(l['msg'])).join(' | ')}`)
  t.match(cli(redis, 'get', 'porchlight:lease:host:kept.localhost'), /^two\/wipe-two /, 'the lease is two\'s')
})
