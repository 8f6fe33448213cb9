import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { runCaInit } from '../../src/commands/ca.js'
import { runCertIssue, runCertList, runCertRevoke } from '../../src/commands/cert.js'

t.test('ca init, cert issue, revoke and list print what a user needs', async (t) => {
  const root = t.testdir()
  const pki = join(root, 'pki')
  const lines: string[] = []
  const print = (line: string) => lines.push(line)

  await runCaInit({ pki, hostname: 'relay.test' }, print)
  t.match(lines[0], `created CA ${join(pki, 'ca.crt')}`)
  t.ok(lines.includes(`  tls: { cert: ${join(pki, 'server.crt')}, key: ${join(pki, 'server.key')} }`))
  await t.rejects(runCaInit({ pki }, print), { code: 'PL_ERR_PKI_EXISTS' })

  lines.length = 0
  const out = join(root, 'laptop.pem')
  const issued = await runCertIssue({ pki, name: 'laptop', days: 30, out }, print)
  t.equal(lines[0], `issued agent certificate for laptop: serial ${issued.serial}, expires ${issued.notAfter.toISOString().slice(0, 10)}`)
  t.ok(lines.includes(`agent.yaml:  cert: ${out}`))
  t.equal((await stat(out)).mode & 0o777, 0o600)
  t.equal(await readFile(out, 'utf8'), issued.pemBundle)

  const cwd = process.cwd()
  process.chdir(root)
  t.teardown(() => process.chdir(cwd))
  const defaulted = await runCertIssue({ pki, name: 'desktop' }, print)
  t.equal(defaulted.file, join(root, 'desktop.pem'), 'default ./NAME.pem')

  lines.length = 0
  t.same(await runCertRevoke({ pki, target: 'laptop' }, print), [issued.serial])
  t.same(lines, [`revoked ${issued.serial}`, '1 certificate revoked; a connected agent using one is cut off within 5 s'])

  lines.length = 0
  await runCertList({ pki }, print)
  t.equal(lines.length, 3)
  t.match(lines[0], /^NAME {5}SERIAL {28}EXPIRES {5}REVOKED$/)
  t.match(lines[1], new RegExp(`^laptop {3}${issued.serial}  \\d{4}-\\d\\d-\\d\\d  yes$`))
  t.match(lines[2], new RegExp(`^desktop  ${defaulted.serial}  \\d{4}-\\d\\d-\\d\\d  no$`))
})

t.test('cert list on a fresh PKI says so', async (t) => {
  const pki = join(t.testdir(), 'pki')
  const lines: string[] = []
  await runCaInit({ pki }, () => {})
  await runCertList({ pki }, (l) => lines.push(l))
  t.same(lines, ['no certificates issued yet (porchlight-relay cert issue NAME)'])
})
