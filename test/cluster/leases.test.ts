import { execFileSync } from 'node:child_process'
import t from 'tap'
import { RawAgent } from '../e2e/harness/raw-agent.js'
import { startAgent } from '../e2e/harness/processes.js'
import { pollUntil } from '../e2e/harness/wait.js'
import { connect } from 'node:net'
import { freePortOnAll, RELAY_IPS, startCluster, startEchoOrigin, startRedis, visit, type ClusterRelay, type Outcome } from './harness.js'

// Done-when 8: a hostname both agents' policies admit (`*.localhost`) is owned through a fenced
// lease in Redis. Two agents race for it 50 times: one winner each time, the other refused with
// PL_ERR_LEASE_HELD on every relay. Freeze the winner (its process and one relay) past the lease:
// the other takes over; resume: the old owner serves nothing, and says so once. A TCP port in both
// agents' tcp_ports is leased the same way.
const LEASE_TTL_MS = 3_000
const AGENTS = ['one', 'two']

interface Published { id: string; ok: boolean; url?: string; code?: string }

t.test('two agents race for a contested name 50 times: exactly one winner each time', async (t) => {
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: AGENTS, hosts: ['*.localhost'], leaseTtlMs: LEASE_TTL_MS })
  // Each agent: one process (instance) with one link to every relay, as a real agent holds.
  const links: Record<string, RawAgent[]> = {}
  for (const agent of AGENTS) {
    links[agent] = await Promise.all(relays.map(async (r, i) => {
      const raw = await RawAgent.connect(t, r.agentsUrl, r.proc.tokens[agent]!, { 'x-porchlight-instance': `race-${agent}`, 'x-porchlight-link': `link-${agent}-${i}` })
      await raw.hello()
      return raw
    }))
  }
  const winners: string[] = []
  const problems: string[] = []
  for (let round = 1; round <= 50; round++) {
    const host = `race-${round}`
    // The six publishes leave in a random order each round: a real race, not "whoever is first in the loop".
    const senders = AGENTS.flatMap((agent) => links[agent]!.map((raw) => ({ agent, raw }))).sort(() => Math.random() - 0.5)
    const answers = await Promise.all(senders.map(async ({ agent, raw }) => {
      raw.send({ type: 'publish', tunnels: [{ id: 'web', kind: 'http', host }] })
      const m = await raw.next((x) => x['type'] === 'published', 10_000)
      return { agent, result: (m['results'] as Published[])[0]! }
    }))
    const won = AGENTS.filter((a) => answers.filter((x) => x.agent === a).every((x) => x.result.ok))
    const lost = AGENTS.filter((a) => answers.filter((x) => x.agent === a).every((x) => !x.result.ok && x.result.code === 'PL_ERR_LEASE_HELD'))
    if (won.length !== 1 || lost.length !== 1) problems.push(`round ${round}: ${JSON.stringify(answers.map((x) => [x.agent, x.result.ok ? 'ok' : x.result.code]))}`)
    winners.push(won[0] ?? '?')
  }
  t.same(problems, [], 'every round: one agent accepted on all 3 relays, the other refused with PL_ERR_LEASE_HELD on all 3')
  t.equal(winners.length, 50)
  t.comment(`wins: one ${winners.filter((w) => w === 'one').length}, two ${winners.filter((w) => w === 'two').length}`)
  const value = execFileSync('redis-cli', ['-p', String(redis.port), 'get', 'porchlight:lease:host:race-50.localhost'], { encoding: 'utf8' }).trim()
  t.match(value, new RegExp(`^${winners[49]}/race-${winners[49]} \\d+ [A-Za-z0-9_-]{43}$`), 'the lease names the winner, its fencing token and a tag')
})

t.test('freeze the winner past its lease: the other takes over; resumed, the old owner serves nothing', async (t) => {
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: AGENTS, hosts: ['*.localhost'], leaseTtlMs: LEASE_TTL_MS, heartbeat: { interval_ms: 500, timeout_ms: 2000 } })
  const origins = await Promise.all(AGENTS.map((a) => startEchoOrigin(t, a)))
  const agents = await Promise.all(AGENTS.map((name, i) => startAgent(t, relays[0]!.proc, {
    name,
    tunnels: [{ http: 'shared', to: origins[i]!.url }],
    extra: { relay: relays[0]!.agentsUrl },
    env: { PORCHLIGHT_BACKOFF_MAX_MS: '500', PORCHLIGHT_REJECTED_RETRY_MS: '500' },
    // Only the winner prints a Forwarding line; the other is refused.
    forwarding: 0,
    waitFor: /tunnel (ready|rejected)/,
  })))
  const ask = (r: ClusterRelay): Promise<Outcome> => visit(r.ports.public, 'shared.localhost', 3000, r.ip)
  const settled = await pollUntil(() => Promise.all(relays.map(ask)), (os) => os.every((o) => o.status === 200) && new Set(os.map((o) => o.served?.agent)).size === 1, { timeoutMs: 15_000, intervalMs: 200 })
  t.ok(settled.ok, 'every relay serves shared.localhost, all by the same agent')
  const winner = settled.value[0]!.served!.agent
  const other = AGENTS.find((a) => a !== winner)!
  const [winnerProc, otherProc] = winner === 'one' ? [agents[0]!, agents[1]!] : [agents[1]!, agents[0]!]
  // Load on every relay that is not frozen, recording who served each request.
  const outcomes: Array<Outcome & { via: string }> = []
  const frozen = new Set<string>()
  let loading = true
  const load = (async () => {
    while (loading) {
      const round = relays.filter((r) => !frozen.has(r.id)).map(async (r) => { outcomes.push({ ...(await ask(r)), via: r.id }) })
      await Promise.all([...round, new Promise((res) => setTimeout(res, 100))])
    }
  })()

  // Steady state: the loser is refused on three links and retries every 500 ms, says so once, and
  // its retries never disturb the winner's serving (renewals keep the lease).
  await new Promise((r) => setTimeout(r, 2 * LEASE_TTL_MS))
  const held = otherProc.logs().filter((l) => l['code'] === 'PL_ERR_LEASE_HELD' && String(l['msg']).startsWith('tunnel rejected'))
  t.equal(held.length, 1, `the loser (${other}) printed PL_ERR_LEASE_HELD once: ${String(held[0]?.['msg'])}`)
  t.equal(otherProc.logs().filter((l) => l['code'] === 'PL_ERR_LEASE_HELD').length, 1, 'and logged nothing else about it')
  const steady = [...outcomes]
  t.ok(steady.length >= 100, `${steady.length} requests before the freeze`)
  t.same(steady.filter((o) => o.status !== 200 || o.served?.agent !== winner).map((o) => `${o.via} ${o.status}`), [], `all served by the winner (${winner}), across two lease lifetimes`)

  const r1 = relays[0]!
  process.kill(winnerProc.pid, 'SIGSTOP')
  frozen.add(r1.id)
  r1.signal('SIGSTOP')
  const frozeAt = Date.now()
  const taken = await pollUntil(() => Promise.all(relays.slice(1).map(ask)), (os) => os.every((o) => o.served?.agent === other), { timeoutMs: 20_000, intervalMs: 100 })
  const takenAt = Date.now()
  t.ok(taken.ok, `r2 and r3 serve the other agent (${other}) ${takenAt - frozeAt} ms after the freeze`)
  t.ok(takenAt - frozeAt >= LEASE_TTL_MS - 1_000, 'not before the old lease could have run out')
  // Past the lease, then resume both: r1 still holds the old owner's link and route.
  await new Promise((r) => setTimeout(r, 1_000))
  r1.signal('SIGCONT')
  process.kill(winnerProc.pid, 'SIGCONT')
  frozen.delete(r1.id)
  const resumedAt = Date.now()
  const back = await pollUntil(() => ask(r1), (o) => o.served?.agent === other, { timeoutMs: 10_000, intervalMs: 100 })
  t.ok(back.ok, `resumed r1 serves ${other} too (${Date.now() - resumedAt} ms after SIGCONT)`)
  await new Promise((r) => setTimeout(r, 3_000))
  loading = false
  await load

  const afterTakeover = outcomes.filter((o) => o.startedAt >= takenAt)
  t.ok(afterTakeover.length >= 50, `${afterTakeover.length} requests after the takeover`)
  t.same(afterTakeover.filter((o) => o.served?.agent === winner), [], `the old owner (${winner}) served none of them, on any relay (r1 included)`)
  t.same(outcomes.filter((o) => o.served !== null && o.served.host !== 'shared.localhost'), [], 'misrouted = 0')
  const settledLate = outcomes.filter((o) => o.startedAt >= resumedAt + 2_000)
  t.ok(settledLate.length >= 20, `${settledLate.length} requests from 2 s after the resume`)
  const bad = settledLate.filter((o) => o.status !== 200 || o.served?.agent !== other)
  t.same(bad.map((o) => `${o.via} ${o.status} ${o.served?.agent ?? '-'}`), [], `all of them served by ${other}`)
  if (bad.length > 0) for (const r of relays) t.comment(r.id, JSON.stringify(r.proc.logs().filter((l) => /lease|publish|rejected|session/.test(String(l['msg']))).slice(-15).map((l) => [l['time'], l['msg'], l['agent'], l['host'], l['holder'], l['code']])))
  if (bad.length > 0) t.comment('resumed at', resumedAt, 'first bad', bad[0]?.startedAt)
  const value = execFileSync('redis-cli', ['-p', String(redis.port), 'get', 'porchlight:lease:host:shared.localhost'], { encoding: 'utf8' }).trim()
  t.match(value, new RegExp(`^${other}/`), `Redis: the lease is ${other}'s`)

  // The old owner learns it: the lease passed (from r1, which still had its link) or its
  // re-publish is refused; each said once, though three relays and every retry answer.
  const told = await pollUntil(async () => winnerProc.logs().filter((l) => l['code'] === 'PL_ERR_LEASE_LOST' || l['code'] === 'PL_ERR_LEASE_HELD'), (ls) => ls.length >= 1, { timeoutMs: 5_000 })
  t.ok(told.ok, `the old owner was told: ${told.value.map((l) => `${String(l['code'])}: ${String(l['msg'])}`).join(' | ')}`)
  t.ok(told.value.filter((l) => l['code'] === 'PL_ERR_LEASE_LOST').length <= 1 && told.value.filter((l) => l['code'] === 'PL_ERR_LEASE_HELD').length <= 1, 'each code printed at most once')

  // Redis gone: leases cannot be renewed, so the contested name stops everywhere within the TTL
  // (nobody can prove they still own it); the relays stay ready (no peer is fresher).
  await redis.handle.kill('SIGKILL')
  const killedAt = Date.now()
  const stopped = await pollUntil(() => Promise.all(relays.map(ask)), (os) => os.every((o) => o.status === 503), { timeoutMs: LEASE_TTL_MS + 5_000, intervalMs: 100 })
  t.ok(stopped.ok && Date.now() - killedAt <= LEASE_TTL_MS + 2_000, `Redis killed: shared.localhost answers 503 on every relay after ${Date.now() - killedAt} ms (lease ${LEASE_TTL_MS} ms)`)
  t.same(await Promise.all(relays.map((r) => r.readyz())), [200, 200, 200], 'every relay stays ready')
})

t.test('two agents race for a contested TCP port 10 times: one winner, listening on every relay', async (t) => {
  const redis = await startRedis(t)
  const ports: number[] = []
  for (let i = 0; i < 10; i++) ports.push(await freePortOnAll(RELAY_IPS, new Set(ports)))
  const relays = await startCluster(t, { redis, agents: AGENTS, hosts: ['*.localhost'], tcpPorts: ports, leaseTtlMs: LEASE_TTL_MS })
  const links: Record<string, RawAgent[]> = {}
  for (const agent of AGENTS) {
    links[agent] = await Promise.all(relays.map(async (r, i) => {
      const raw = await RawAgent.connect(t, r.agentsUrl, r.proc.tokens[agent]!, { 'x-porchlight-instance': `tcp-${agent}`, 'x-porchlight-link': `tcp-${agent}-${i}` })
      await raw.hello()
      return raw
    }))
  }
  const problems: string[] = []
  const winners: string[] = []
  const listening = (ip: string, port: number): Promise<boolean> => new Promise((resolve) => {
    const s = connect({ host: ip, port }, () => { s.destroy(); resolve(true) })
    s.on('error', () => resolve(false))
  })
  for (const port of ports) {
    const senders = AGENTS.flatMap((agent) => links[agent]!.map((raw) => ({ agent, raw }))).sort(() => Math.random() - 0.5)
    const answers = await Promise.all(senders.map(async ({ agent, raw }) => {
      raw.send({ type: 'publish', tunnels: [{ id: 'db', kind: 'tcp', remote_port: port }] })
      const m = await raw.next((x) => x['type'] === 'published', 10_000)
      return { agent, result: (m['results'] as Published[])[0]! }
    }))
    const won = AGENTS.filter((a) => answers.filter((x) => x.agent === a).every((x) => x.result.ok))
    const lost = AGENTS.filter((a) => answers.filter((x) => x.agent === a).every((x) => !x.result.ok && x.result.code === 'PL_ERR_LEASE_HELD'))
    const open = await Promise.all(RELAY_IPS.map((ip) => listening(ip, port)))
    const holder = execFileSync('redis-cli', ['-p', String(redis.port), 'get', `porchlight:lease:port:${port}`], { encoding: 'utf8' }).split('/')[0]
    if (won.length !== 1 || lost.length !== 1 || open.includes(false) || holder !== won[0]) problems.push(`port ${port}: ${JSON.stringify(answers.map((x) => [x.agent, x.result.ok ? 'ok' : x.result.code]))} listening ${open.join(',')} lease ${holder}`)
    winners.push(won[0] ?? '?')
  }
  t.same(problems, [], 'every round: one agent listens on all 3 relays (its lease in Redis), the other refused with PL_ERR_LEASE_HELD on all 3')

  // The last round's winner goes away: its listeners close at once, and the other agent gets the
  // port only once the lease ran out (no renewals without a link), with a larger fencing token.
  const port = ports[ports.length - 1]!
  const winner = winners[winners.length - 1]!
  const other = AGENTS.find((a) => a !== winner)!
  const before = execFileSync('redis-cli', ['-p', String(redis.port), 'get', `porchlight:lease:port:${port}`], { encoding: 'utf8' }).trim()
  for (const raw of links[winner]!) raw.close()
  const goneAt = Date.now()
  const taken = await pollUntil(async () => {
    const results = await Promise.all(links[other]!.map(async (raw) => {
      raw.send({ type: 'publish', tunnels: [{ id: 'db', kind: 'tcp', remote_port: port }] })
      return ((await raw.next((x) => x['type'] === 'published', 10_000))['results'] as Published[])[0]!
    }))
    return results.map((r) => (r.ok ? 'ok' : r.code))
  }, (rs) => rs.every((r) => r === 'ok'), { timeoutMs: LEASE_TTL_MS + 5_000, intervalMs: 250 })
  const ms = Date.now() - goneAt
  t.ok(taken.ok, `${other} listens on the port on every relay ${ms} ms after ${winner} left`)
  t.ok(ms >= LEASE_TTL_MS - 1_500, 'not before the lease could have run out')
  const after = execFileSync('redis-cli', ['-p', String(redis.port), 'get', `porchlight:lease:port:${port}`], { encoding: 'utf8' }).trim()
  t.equal(after.split('/')[0], other, `the lease is ${other}'s now`)
  t.ok(Number(after.split(' ')[1]) > Number(before.split(' ')[1]), `with a larger fencing token (${before.split(' ')[1]} -> ${after.split(' ')[1]})`)
})
