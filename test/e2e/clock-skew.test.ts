// Clock skew (SECURITY F12): an agent whose clock is off by minutes still connects over wss://
// with a relay certificate made a moment ago (certificates start an hour back); one whose clock is
// hours slow gets an explicit PL_ERR_LINK_CLOCK_SKEW naming its clock, keeps retrying, and never
// sends its token. The skewed clocks are real: the agent binary runs with libfaketime preloaded.
import { existsSync } from 'node:fs'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { initPki, issueCert, relayTlsKeys } from './harness/pki.js'
import { startAgent, startRelay } from './harness/processes.js'
import { visit } from './harness/visitor.js'

/** Debian's libfaketime (multi-threaded variant: node has worker threads). */
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1'
const skip = existsSync(LIBFAKETIME) ? false : 'libfaketime is not installed (apt-get install faketime; .ci/run does)'

/** The agent's environment for a clock `offset` off ("-10m", "+2h"). Preloaded into node itself,
 * not through the faketime wrapper, so signals reach the agent. Timers use the monotonic clock,
 * which stays true; only the wall clock (and so OpenSSL's "now") moves. */
function skewedClock(offset: string): Record<string, string> {
  return { LD_PRELOAD: LIBFAKETIME, FAKETIME: offset, FAKETIME_DONT_FAKE_MONOTONIC: '1' }
}

t.test('agent clocks minutes off connect; hours slow is refused with a clock error', { skip }, async t => {
  // A CA and relay certificate made now: the hardest case for a slow clock.
  const pki = await initPki(t)
  const laptop = await issueCert(pki, 'laptop')
  const origin = await startHttpOrigin(t, { '/who': (_req, res) => res.end('laptop') })
  const relay = await startRelay(t, { agents: { laptop: { require_cert: true } }, extra: relayTlsKeys(pki) })
  const relayUrl = `wss://localhost:${relay.agentsPort}`

  for (const offset of ['-10m', '+10m', '-50m']) {
    await t.test(`agent clock ${offset}`, async t => {
      const agent = await startAgent(t, relay, {
        tunnels: [{ http: 'skew', to: origin.url }],
        extra: { relay: relayUrl, cert: laptop.file },
        env: skewedClock(offset),
      })
      t.equal(agent.forwarding.length, 1, 'published over wss:// with its client certificate')
      t.equal((await visit(relay.publicPort, { host: 'skew.localhost', path: '/who' })).text, 'laptop')
      await agent.kill()
    })
  }

  await t.test('agent clock 2 hours slow', async t => {
    const agent = await startAgent(t, relay, {
      tunnels: [{ http: 'skew', to: origin.url }],
      extra: { relay: relayUrl, cert: laptop.file },
      env: skewedClock('-2h'),
      forwarding: 0,
      waitFor: /PL_ERR_LINK_CLOCK_SKEW/,
    })
    const line = agent.stderr().split('\n').find(l => l.includes('PL_ERR_LINK_CLOCK_SKEW')) ?? ''
    t.match(line, /not yet valid/, 'says the certificate is not yet valid')
    const clock = /by this machine's clock \((\d{4}-\d\d-\d\dT[\d:.]+Z)\)/.exec(line)?.[1]
    t.ok(clock !== undefined, 'names the clock it used')
    const behindMs = Date.now() - Date.parse(clock ?? '')
    t.ok(behindMs > 110 * 60_000 && behindMs < 130 * 60_000, `the clock it names is ${Math.round(behindMs / 60_000)} minutes behind`)
    // Retryable: the agent stays up, since NTP may yet fix the clock.
    const attempts = (): number => agent.stderr().split('\n').filter(l => l.includes('PL_ERR_LINK_CLOCK_SKEW')).length
    await agent.handle.waitForLine('any', () => attempts() >= 2, 8000, 'a second attempt')
    t.ok(attempts() >= 2 && agent.handle.running, `the agent stays up and retries (${attempts()} attempts so far)`)
    t.same(await relay.connectedAgents(), [], 'no session: the TLS handshake failed before any token was sent')
  })
})
