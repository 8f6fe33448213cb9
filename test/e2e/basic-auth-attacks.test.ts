// Issue 16, cases 2 and 3, against the real relay: concurrent guesses cannot beat the basic-auth
// limit (10 failures per address and site in 5 minutes, docs/access.md), and a right password
// under a wrong user name costs the same scrypt run as a wrong password, even right after the
// real user logged in (the relay's success cache must not answer for another user name).
import { Agent } from 'node:http'
import t from 'tap'
import { startHttpOrigin } from './harness/origins.js'
import { runCli, startAgent, startRelay } from './harness/processes.js'
import { visit } from './harness/visitor.js'

const LIMIT = 10
const PASSWORD = 'correct horse battery staple'
const hashed = await runCli('agent', ['hash-password', '--password-stdin'], { input: PASSWORD })
const basic = { user: 'alice', password_hash: hashed.stdout.trim() }
const origin = await startHttpOrigin(t)
const relay = await startRelay(t)
await startAgent(t, relay, { tunnels: [{ http: 'team', to: origin.url, access: { basic } }] })

function header(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` }
}

/** One request from a chosen loopback source address, on its own connection. */
async function get(from: string, headers: Record<string, string>, path = '/'): Promise<{ status: number; ms: number }> {
  const agent = new Agent({ localAddress: from })
  const started = performance.now()
  try {
    const res = await visit(relay.publicPort, { host: 'team.localhost', path, headers, agent, timeoutMs: 30_000 })
    return { status: res.status, ms: performance.now() - started }
  } finally {
    agent.destroy()
  }
}

t.test('200 parallel wrong guesses from one address: exactly the limit are checked (401), the rest get 429', { timeout: 120_000 }, async (t) => {
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => get('127.0.0.5', header('alice', `guess ${i}`), `/guess-${i}`)))
  const count = (status: number) => results.filter((r) => r.status === status).length
  t.equal(count(401), LIMIT, `${LIMIT} guesses were checked`)
  t.equal(count(429), 200 - LIMIT, 'every other guess was refused before its check')
  t.equal((await get('127.0.0.5', header('alice', PASSWORD))).status, 429, 'the address stays limited, even with the right password')
  t.equal((await get('127.0.0.6', header('alice', PASSWORD))).status, 200, 'another address is not locked out')
  t.equal(origin.requests.filter((r) => r.url.startsWith('/guess-')).length, 0, 'no guess reached the local site')
})

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

t.test('wrong user + right password costs what a wrong password costs, after a real login', { timeout: 180_000 }, async (t) => {
  t.equal((await get('127.0.0.7', header('alice', PASSWORD))).status, 200, 'alice logs in (her success is cached)')
  // Pairs measured back to back share the machine's load, so the median of their ratios is steady on
  // a busy CI box where absolute times are not. The defect this guards against made the ratio ~0.02
  // (a cache hit against a scrypt run); a round within 20% passes, three rounds at most.
  const verdicts: string[] = []
  for (let round = 0; round < 3; round++) {
    const ratios: number[] = []
    const wrongPassword: number[] = []
    for (let i = 0; i < 16; i++) {
      // At most 8 attempts per address: the limit is 10 failures per address and site.
      const from = round * 2 + (i >= 8 ? 1 : 0)
      // Alternate which goes first, so an order effect cancels out.
      const wrongUser = () => get(`127.0.1.${from}`, header('mallory', PASSWORD))
      const wrongPass = () => get(`127.0.2.${from}`, header('alice', `wrong ${round}-${i}`))
      let a: { status: number; ms: number }
      let b: { status: number; ms: number }
      if (i % 2 === 0) {
        a = await wrongUser()
        b = await wrongPass()
      } else {
        b = await wrongPass()
        a = await wrongUser()
      }
      t.equal(a.status, 401)
      t.equal(b.status, 401)
      ratios.push(a.ms / b.ms)
      wrongPassword.push(b.ms)
    }
    const ratio = median(ratios)
    verdicts.push(`round ${round + 1}: median wrong-user/wrong-password ${ratio.toFixed(2)} (wrong password ${median(wrongPassword).toFixed(1)} ms)`)
    t.ok(median(wrongPassword) > 5, 'a wrong password runs scrypt')
    if (ratio >= 0.8 && ratio <= 1.25) break
  }
  const last = verdicts[verdicts.length - 1] ?? ''
  const ratio = Number(/median wrong-user\/wrong-password ([\d.]+)/.exec(last)?.[1])
  t.ok(ratio >= 0.8 && ratio <= 1.25, `indistinguishable within 20%: ${verdicts.join('; ')}`)
})
