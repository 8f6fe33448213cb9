// File descriptors run out (SECURITY E7): a relay capped at 256 open files is flooded with idle
// connections on its public and agents ports. It must keep running and keep its agent's session,
// and serve again as soon as the flood lets go: no crash on EMFILE, no restart needed.
import { readdirSync } from 'node:fs'
import type { Socket } from 'node:net'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { startAgent, startRelay } from './harness/processes.js'
import { connectTcp } from './harness/tcp.js'
import { visit } from './harness/visitor.js'
import { pollUntil } from './harness/wait.js'

const FD_LIMIT = 256
const FLOOD = 600

/** Opens `count` idle connections; those the relay could not keep simply end up closed. */
async function flood(port: number, count: number): Promise<Socket[]> {
  const sockets = await Promise.all(Array.from({ length: count }, () => connectTcp(port, '127.0.0.1', 5000).catch(() => null)))
  return sockets.filter((s): s is Socket => s !== null).map(s => { s.on('error', () => undefined); return s })
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

t.test(`a relay limited to ${FD_LIMIT} files survives ${FLOOD} idle connections per port and serves again after`, async t => {
  const origin = await startHttpOrigin(t, { '/who': (_req, res) => res.end('laptop') })
  const relay = await startRelay(t, { execUnder: ['prlimit', `--nofile=${FD_LIMIT}:${FD_LIMIT}`] })
  await startAgent(t, relay, { tunnels: [{ http: 'full', to: origin.url }] })
  const host = 'full.localhost'
  t.equal((await visit(relay.publicPort, { host, path: '/who' })).text, 'laptop')
  const [before] = await relay.connectedAgents()
  const relayRun = relay.runs[relay.runs.length - 1]!

  const held = [...await flood(relay.publicPort, FLOOD), ...await flood(relay.agentsPort, FLOOD)]
  // Let the relay accept what it can (and shed what it cannot) before looking.
  await new Promise(resolve => setTimeout(resolve, 1000))
  const fdsAtPeak = openFds(relayRun.pid)
  t.ok(fdsAtPeak >= FD_LIMIT - 8, `the relay ran out of descriptors (${fdsAtPeak} open of ${FD_LIMIT})`)
  t.equal(relayRun.running, true, 'the relay is still running at the limit')

  for (const s of held) s.destroy()
  const back = await pollUntil(() => visit(relay.publicPort, { host, path: '/who', timeoutMs: 1000 }).catch(() => null), r => r?.status === 200, { timeoutMs: 5000, intervalMs: 100 })
  t.equal(back.value?.text, 'laptop', `served again ${back.ms} ms after the flood let go`)
  const after = await relay.connectedAgents()
  t.equal(after.length, 1, 'one agent session')
  t.equal(after[0]?.session, before?.session, 'the agent kept the session it had before the flood')
  t.ok(openFds(relayRun.pid) < fdsAtPeak - 100, `descriptors released (${openFds(relayRun.pid)} open)`)
})
