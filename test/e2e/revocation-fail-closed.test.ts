// Issue 14 / SECURITY.md D-series: revocation fails closed. A revocation list that becomes
// unreadable or malformed while the relay runs keeps the last good set (the revoked certificate
// stays out), is logged once and counted in /metrics; `check` and a fresh start refuse it.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { initPki, issueCert, relayTlsKeys, revokeCert } from './harness/pki.js'
import { runCli, startRelay } from './harness/processes.js'
import { upgradeOverTls } from './harness/tls-upgrade.js'
import { pollUntil } from './harness/wait.js'

const pki = await initPki(t)
const good = await issueCert(pki, 'laptop', 'good.pem')
const revoked = await issueCert(pki, 'laptop', 'revoked.pem')
await revokeCert(pki, revoked.serial)
const relay = await startRelay(t, { agents: { laptop: { require_cert: true } }, extra: relayTlsKeys(pki) })
const token = relay.tokens['laptop'] ?? ''
const probe = (bundle: string) => upgradeOverTls({ port: relay.agentsPort, caCert: pki.caCert, token, bundle })
const revokedFile = join(pki.dir, 'revoked.json')
const goodList = readFileSync(revokedFile, 'utf8')

async function listErrors(): Promise<number> {
  const res = await fetch(`${relay.adminUrl}/metrics`, { headers: { authorization: `Bearer ${relay.adminToken}` } })
  return Number(/^porchlight_revocation_list_errors_total (\d+)$/m.exec(await res.text())?.[1] ?? -1)
}

t.test('a running relay keeps the last good list when revoked.json turns malformed', { timeout: 60_000 }, async (t) => {
  t.equal((await probe(good.file)).status, 101, 'the good certificate gets in')
  t.equal((await probe(revoked.file)).status, 403, 'the revoked one does not')

  for (const [what, text] of [['not JSON', '{"version":1,"revoked":[{"serial":'], ['a record without a serial', '{"version":1,"revoked":[{"name":"laptop"}]}'], ['empty', '']] as const) {
    const errorsBefore = await listErrors()
    writeFileSync(revokedFile, text)
    const counted = await pollUntil(() => listErrors(), (n) => n > errorsBefore, { timeoutMs: 5000, intervalMs: 100 })
    t.ok(counted.ok, `${what}: counted in /metrics after ${counted.ms} ms`)
    t.equal((await probe(revoked.file)).status, 403, `${what}: the revoked certificate is still refused`)
    t.equal((await probe(good.file)).status, 101, `${what}: the good one still gets in`)
  }
  const errorLines = relay.logs().filter((l) => l['msg'] === 'revocation list unreadable; keeping the last good one')
  t.equal(errorLines.length, 3, 'logged once per distinct problem, not once per poll')
  t.match(errorLines[0], { level: 50, code: 'PL_ERR_TLS_FILE' })

  const check = await runCli('relay', ['check', '-c', relay.configFile])
  t.equal(check.code, 1, 'check refuses the malformed list')
  t.match(check.stderr, /^PL_ERR_TLS_FILE: .*revoked\.json/m)

  writeFileSync(revokedFile, goodList)
  const back = await pollUntil(async () => relay.logs().some((l) => l['msg'] === 'revocation list readable again'), (ok) => ok, { timeoutMs: 5000, intervalMs: 100 })
  t.ok(back.ok, 'the repaired list is taken up again')
})

t.test('a relay does not start on a malformed revocation list', { timeout: 60_000 }, async (t) => {
  writeFileSync(revokedFile, '{"version":1,"revoked":[{"serial":')
  await relay.kill('SIGTERM')
  const failed = await relay.start().then(() => 'started', (err: Error) => err.message)
  t.not(failed, 'started', 'the start fails')
  t.equal(await relay.exited, 1, 'exit code 1')
  t.match(relay.output(), /PL_ERR_TLS_FILE: .*revoked\.json/)
  t.notMatch(relay.output(), /\n\s+at /, 'no stack trace')
})
