// `porchlight-relay init --acme-email`: HTTPS with ACME on from the start; the file passes `check`.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadRelayConfig } from '@porchlight/shared/config'
import { runCheck } from '../../src/commands/check.js'
import { runInit } from '../../src/commands/init.js'

async function check(file: string): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = []
  const code = await runCheck({ config: file }, (l) => lines.push(l))
  return { code, lines }
}

t.test('--acme-email: public_tls on 443 without certs, acme, redirect_http; check passes', async (t) => {
  const dir = t.testdir()
  const lines: string[] = []
  const result = await runInit({ domain: 'tunnel.example.com', dir, acmeEmail: 'you@example.com' }, (l) => lines.push(l))
  const { config, warnings } = await loadRelayConfig(result.configFile)
  t.same(config.listen.public, { host: '0.0.0.0', port: 80 })
  t.same(config.listen.public_tls, { address: { host: '0.0.0.0', port: 443 }, certs: [] })
  t.same(config.listen.agents, { host: '0.0.0.0', port: 7443 })
  t.equal(config.acme?.email, 'you@example.com')
  t.equal(config.acme?.challenge, 'auto')
  t.equal(config.acme?.directory, 'https://acme-v02.api.letsencrypt.org/directory')
  t.equal(config.redirect_http, true)
  t.ok(config.tls, 'the dedicated agents listener keeps its pinned certificate')
  t.same(warnings.filter((w) => !w.startsWith('agents: no agents')), [])
  const text = readFileSync(result.configFile, 'utf8')
  t.match(text, /acme-staging-v02/, 'the staging CA is named in a comment')
  t.equal((await check(result.configFile)).code, 0)
  t.ok(lines.some((l) => /open ports 80 and 443 and 7443/.test(l)))
})

t.test('--agents-shared and --acme-directory: agents on 443, no tls:, the test CA', async (t) => {
  const dir = t.testdir()
  const result = await runInit({ domain: 'tunnel.example.com', dir, acmeEmail: 'you@example.com', acmeDirectory: 'http://127.0.0.1:14000/dir', agentsShared: true }, () => {})
  const { config, warnings } = await loadRelayConfig(result.configFile)
  t.equal(config.listen.agents, 'shared')
  t.equal(config.tls, null, 'no tls: (unused with shared)')
  t.equal(config.pki, join(dir, 'pki'), 'pki stays for client certificates')
  t.equal(config.acme?.directory, 'http://127.0.0.1:14000/dir')
  t.same(warnings.filter((w) => !w.startsWith('agents: no agents')), [])
  t.equal((await check(result.configFile)).code, 0)
})

t.test('without --acme-email nothing changes; the HTTPS flags are checked before anything is written', async (t) => {
  const dir = t.testdir()
  const result = await runInit({ domain: 'tunnel.example.com', dir: join(dir, 'plain') }, () => {})
  const { config } = await loadRelayConfig(result.configFile)
  t.equal(config.listen.public_tls, null)
  t.equal(config.acme, null)
  t.equal(config.redirect_http, false)
  t.same(config.listen.agents, { host: '0.0.0.0', port: 7443 })
  t.notMatch(readFileSync(result.configFile, 'utf8'), /^acme:|^redirect_http:|^\s+public_tls:|acme-staging/m)
  t.equal((await check(result.configFile)).code, 0)

  const bad = join(dir, 'bad')
  await t.rejects(runInit({ domain: 'tunnel.example.com', dir: bad, agentsShared: true }, () => {}), { code: 'PL_ERR_USAGE', message: /needs --acme-email/ })
  await t.rejects(runInit({ domain: 'tunnel.example.com', dir: bad, acmeDirectory: 'https://ca.example/dir' }, () => {}), { code: 'PL_ERR_USAGE', message: /needs --acme-email/ })
  await t.rejects(runInit({ domain: 'tunnel.example.com', dir: bad, acmeEmail: 'nope' }, () => {}), { code: 'PL_ERR_USAGE', message: /--acme-email/ })
  await t.rejects(runInit({ domain: 'tunnel.example.com', dir: bad, acmeEmail: 'a@b.example', acmeDirectory: 'http://ca.example/dir' }, () => {}), { code: 'PL_ERR_USAGE', message: /--acme-directory/ })
  await t.rejects(runInit({ domain: 'tunnel.example.com', dir: bad, acmeEmail: 'a@b.example', agentsShared: true, listenAgents: '0.0.0.0:7443' }, () => {}), { code: 'PL_ERR_USAGE' })
  // Second run into the same dir works: the refusals wrote nothing.
  await runInit({ domain: 'tunnel.example.com', dir: bad, acmeEmail: 'a@b.example' }, () => {})
})
