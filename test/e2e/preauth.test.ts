// Before an agent has authenticated it costs the relay little and not for long (SECURITY A10):
// at most 32 connections per address on the agents port, each closed when it has not sent its
// upgrade request within 10 s, and a flood from one address does not stop an agent elsewhere.
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { startAgent, startRelay } from './harness/processes.js'
import { visit } from './harness/visitor.js'

const PER_IP_CAP = 32
const HANDSHAKE_TIMEOUT_MS = 10_000

t.test('idle pre-auth sockets: the excess is closed at once, the rest at the handshake timeout; agents elsewhere still connect', { timeout: 60_000 }, async t => {
  const origin = await startHttpOrigin(t)
  const relay = await startRelay(t)
  const opened = Date.now()
  const closedAfter: number[] = []
  const sockets: Socket[] = []
  await Promise.all(Array.from({ length: 40 }, () => new Promise<void>(resolve => {
    // From 127.0.0.2, so the agent below (127.0.0.1) is another address.
    const socket = connect({ host: '127.0.0.1', port: relay.agentsPort, localAddress: '127.0.0.2' }, () => resolve())
    socket.on('error', () => undefined)
    socket.once('close', () => closedAfter.push(Date.now() - opened))
    sockets.push(socket)
  })))
  t.teardown(() => { for (const s of sockets) s.destroy() })

  await new Promise(resolve => setTimeout(resolve, 500))
  t.equal(closedAfter.length, 40 - PER_IP_CAP, `${40 - PER_IP_CAP} connections over the per-address cap were closed at once`)
  t.ok(closedAfter.every(ms => ms < 500), 'within 500 ms')

  const agentStarted = Date.now()
  await startAgent(t, relay, { tunnels: [{ http: 'busy', to: origin.url }] })
  const agentMs = Date.now() - agentStarted
  t.ok(agentMs < 5000, `an agent from another address connected in ${agentMs} ms during the flood`)
  t.equal((await visit(relay.publicPort, { host: 'busy.localhost', path: '/status/204' })).status, 204, 'and serves')

  const deadline = Date.now() + HANDSHAKE_TIMEOUT_MS + 5000
  while (closedAfter.length < 40 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(closedAfter.length, 40, 'every idle socket was closed')
  const last = Math.max(...closedAfter)
  t.ok(last >= HANDSHAKE_TIMEOUT_MS - 500 && last < HANDSHAKE_TIMEOUT_MS + 3000, `the last one after ${last} ms (handshake timeout ${HANDSHAKE_TIMEOUT_MS} ms)`)
})
