import { cpSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { initPki, issueCert, revokeCert } from '../e2e/harness/pki.js'
import { startAgent } from '../e2e/harness/processes.js'
import { pollUntil } from '../e2e/harness/wait.js'
import { childDir } from '../e2e/harness/workdir.js'
import { startCluster, startEchoOrigin, startRedis, waitForLinks } from './harness.js'

// Done-when 6 (certificates): each relay has its own copy of the cluster's CA directory; a
// certificate revoked on one (`cert revoke` there) closes the agent's links on every relay within
// 5 s: the relay that reads its revocation list puts the serial on the stream for the others.

t.test("a revoked certificate's links are closed on all relays within 5 s", async (t) => {
  const pki = await initPki(t, 'localhost')
  const bundle = await issueCert(pki, 'one')
  const copies = [pki.dir, ...[2, 3].map((n) => {
    const dir = join(childDir(t, `pki-r${n}`), 'pki')
    cpSync(pki.dir, dir, { recursive: true })
    return dir
  })]
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: ['one'], tlsAgents: { pkiFor: (i) => copies[i]! } })
  const origin = await startEchoOrigin(t, 'one')
  const agent = await startAgent(t, relays[0]!.proc, {
    name: 'one',
    tunnels: [{ http: 'one', to: origin.url }],
    extra: { relay: relays[0]!.agentsUrl, cert: bundle.file },
    env: { PORCHLIGHT_BACKOFF_MAX_MS: '500' },
  })
  t.ok((await waitForLinks(relays, ['one'], 10_000)).ok, 'linked to all three relays over wss with its certificate')

  await revokeCert(pki, 'one')
  const revokedAt = Date.now()
  const closed = await pollUntil(() => Promise.all(relays.map((r) => r.linksOf('one'))), (n) => n.every((x) => x === 0), { timeoutMs: 10_000, intervalMs: 50 })
  const ms = Date.now() - revokedAt
  t.ok(closed.ok, `no relay holds a link of the revoked certificate (${closed.value.join(',')})`)
  t.ok(ms <= 5_000, `closed on all relays within 5 s of the revoke (${ms} ms)`)
  for (const r of relays.slice(1)) {
    t.ok(r.proc.logs().some((l) => l['msg'] === 'certificate revoked; closing agent session' && l['serial'] === bundle.serial), `${r.id} (whose own list does not have it) closed the session`)
  }
  void agent
})
