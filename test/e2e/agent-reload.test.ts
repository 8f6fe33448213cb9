// PRODUCT.md: "SIGHUP reloads config without dropping unaffected tunnels". With the real relay: one
// site removed, one added and one kept while an event stream runs on the kept one. The stream
// never breaks, the link is the same session, and the relay routes the new set at once.
import t from 'tap'
import type { AgentYaml } from './harness/config.js'
import { writeYaml } from './harness/config.js'
import { SSE_INTERVAL_MS, startHttpOrigin } from './harness/origins.js'
import { startAgent, startRelay } from './harness/processes.js'
import { visit, visitStream } from './harness/visitor.js'
import { pollUntil } from './harness/wait.js'

const EVENTS = 15

t.test('SIGHUP: a site added and one removed while a stream on a kept site runs on untouched', async t => {
  const origin = await startHttpOrigin(t, { '/who': (req, res) => res.end(`site ${String(req.headers['x-forwarded-host'])}`) })
  const relay = await startRelay(t)
  const tunnels = (names: string[]): AgentYaml['tunnels'] => names.map(http => ({ http, to: origin.url }))
  const agent = await startAgent(t, relay, { tunnels: tunnels(['keep', 'gone']) })
  const [session] = await relay.connectedAgents()
  t.equal((await visit(relay.publicPort, { host: 'gone.localhost', path: '/who' })).text, 'site gone.localhost')

  // An event stream on the kept site, running through the reload.
  const stream = await visitStream(relay.publicPort, { host: 'keep.localhost', path: `/sse?count=${EVENTS}`, headers: { accept: 'text/event-stream' } })
  let events = 0
  const streamEnded = new Promise<string>(resolve => {
    stream.on('data', (chunk: Buffer) => { events += (chunk.toString().match(/^data:/gm) ?? []).length })
    stream.on('end', () => resolve('end'))
    stream.on('error', (err) => resolve(`error ${err.message}`))
    stream.on('aborted', () => resolve('aborted'))
  })
  await pollUntil(async () => events, n => n >= 2, { timeoutMs: 3000 })

  const config: AgentYaml = { relay: relay.agentsUrl, token: relay.tokens['laptop']!, inspect: false, tunnels: tunnels(['keep', 'new']) }
  writeYaml(agent.configFile!, config)
  const eventsAtReload = events
  process.kill(agent.pid, 'SIGHUP')
  await agent.waitForLine(/^Forwarding http:\/\/new\.localhost/, 5000, 'the new site published')

  t.equal((await visit(relay.publicPort, { host: 'new.localhost', path: '/who' })).text, 'site new.localhost', 'the added site answers')
  const removed = await pollUntil(() => visit(relay.publicPort, { host: 'gone.localhost', path: '/who' }), r => r.status === 404, { timeoutMs: 2000 })
  t.equal(removed.value.status, 404, `the removed site is unknown to the relay ${removed.ms} ms after the reload`)
  t.equal((await visit(relay.publicPort, { host: 'keep.localhost', path: '/who' })).text, 'site keep.localhost', 'the kept site answers')

  t.equal(await streamEnded, 'end', 'the event stream on the kept site ended normally')
  t.equal(events, EVENTS, `all ${EVENTS} events arrived (${eventsAtReload} before the reload, ${SSE_INTERVAL_MS} ms apart)`)
  t.ok(eventsAtReload < EVENTS, 'the reload happened while the stream was running')
  const [after] = await relay.connectedAgents()
  t.equal(after?.session, session?.session, 'the same link session throughout')
})
