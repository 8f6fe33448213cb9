// Issue 16, case 1: nothing an agent sends on its control stream can end the relay. An agent with
// a valid token and an empty policy names every property a plain object inherits as a request op;
// each gets a clear "unknown op" error reply, and the relay keeps serving another agent's site.
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { startAgent, startRelay } from './harness/processes.js'
import { RawAgent } from './harness/raw-agent.js'
import { visit } from './harness/visitor.js'

const INHERITED = Object.getOwnPropertyNames(Object.prototype)

t.test('every inherited property name as an op gets PL_ERR_PROTO_BAD_MESSAGE and the relay keeps serving', { timeout: 60_000 }, async (t) => {
  t.ok(INHERITED.includes('constructor') && INHERITED.includes('__proto__') && INHERITED.length >= 12, `${INHERITED.length} names`)
  const origin = await startHttpOrigin(t)
  const relay = await startRelay(t, { agents: { laptop: { hosts: ['*.localhost'] }, mallory: { hosts: [] } } })
  await startAgent(t, relay, { name: 'laptop', tunnels: [{ http: 'site', to: origin.url }] })
  const mallory = await RawAgent.connect(t, relay.agentsUrl, relay.tokens['mallory']!)
  t.match(await mallory.hello(), { type: 'welcome', agent: 'mallory' })

  const names = [...INHERITED, 'hasOwnProperty', 'prototype', '']
  for (const [i, op] of names.entries()) mallory.send({ type: 'request', id: i, op, args: {} })
  for (const [i, op] of names.entries()) {
    const reply = await mallory.next((m) => m['type'] === 'response' && m['id'] === i)
    t.match(reply, { ok: false, code: 'PL_ERR_PROTO_BAD_MESSAGE', message: /^unknown op/ }, `op ${JSON.stringify(op)}`)
  }
  t.equal(relay.current.running, true, 'the relay is still running')
  t.equal((await visit(relay.publicPort, { host: 'site.localhost', path: '/status/204' })).status, 204, 'and serves the other agent')

  // The agent's own session is intact too: a real op still answers.
  mallory.send({ type: 'request', id: 1000, op: 'status', args: {} })
  t.match(await mallory.next((m) => m['id'] === 1000), { type: 'response', ok: true, result: { agent: 'mallory' } })
})
