import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadAgentConfig, loadRelayConfig, MAX_CONFIG_BYTES } from '../../src/config/index.js'
import { HASH_A, PEM, writeFiles } from './helpers.js'

const TOKEN = 't'.repeat(43)

/** Awaits p and returns the rejection's code and message. */
async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string; details: unknown }> {
  try {
    await p
  } catch (err) {
    const e = err as { code: string; message: string; details?: unknown }
    return { code: e.code, message: e.message, details: e.details }
  }
  return { code: 'none', message: '', details: undefined }
}

t.test('read errors are PL_ERR_CONFIG_READ naming the file', async (t) => {
  const dir = t.testdir({ 'big.yaml': 'a: 1\n' + '#'.repeat(MAX_CONFIG_BYTES) })
  const missing = await rejection(loadRelayConfig(join(dir, 'nope.yaml')))
  t.equal(missing.code, 'PL_ERR_CONFIG_READ')
  t.equal(missing.message, `cannot read config ${join(dir, 'nope.yaml')}: no such file`)
  const directory = await rejection(loadRelayConfig(dir))
  t.equal(directory.code, 'PL_ERR_CONFIG_READ')
  t.match(directory.message, /not a regular file|is a directory/)
  t.equal((await rejection(loadRelayConfig(join(dir, 'big.yaml')))).message, `cannot read config ${join(dir, 'big.yaml')}: larger than 1048576 bytes`)
})

t.test('YAML errors carry file:line:col, validation errors carry issues', async (t) => {
  const dir = writeFiles(t.testdir(), {
    'dup.yaml': 'domain: a.test\nlisten:\n  public: :80\n  public: :81\n',
    'bad.yaml': 'domain: a.test\nlisten_adress: :443\nagents:\n  laptop:\n    token_sha256: nope\n',
  })
  const dup = await rejection(loadRelayConfig(join(dir, 'dup.yaml')))
  t.equal(dup.code, 'PL_ERR_CONFIG_YAML')
  t.equal(dup.message, `${join(dir, 'dup.yaml')}:4:3: Map keys must be unique`)
  const bad = await rejection(loadRelayConfig(join(dir, 'bad.yaml')))
  t.equal(bad.code, 'PL_ERR_CONFIG_INVALID')
  t.same(bad.details, [
    { path: 'listen_adress', message: 'unknown key "listen_adress" (did you mean "listen"?)' },
    { path: 'agents.laptop.token_sha256', message: 'expected 64 hex characters (the SHA-256 of a token; `porchlight-relay token new NAME` prints one)' },
  ])
})

t.test('paths are relative to the config file, not the working directory', async (t) => {
  const dir = writeFiles(t.testdir(), {
    'etc/relay.yaml': `listen: { agents: "127.0.0.1:0" }\ntls: { cert: tls/a.crt, key: tls/a.key }\npki: ../var/pki\nagents: { laptop: { token_sha256: "${HASH_A}" } }\n`,
    'etc/tls/a.crt': PEM,
    'etc/tls/a.key': PEM,
  })
  const { config, warnings } = await loadRelayConfig(join(dir, 'etc/relay.yaml'))
  t.same(config.tls, { cert: join(dir, 'etc/tls/a.crt'), key: join(dir, 'etc/tls/a.key') })
  t.equal(config.pki, join(dir, 'var/pki'))
  t.same(warnings, [])
})

t.test('a world-readable agent config with a literal token is a warning naming the file (SECURITY H7)', async (t) => {
  const dir = t.testdir()
  const file = join(dir, 'agent.yaml')
  const tokenFile = join(dir, 'token')
  writeFileSync(tokenFile, TOKEN, { mode: 0o600 })
  const write = (token: string, mode: number): void => {
    writeFileSync(file, `relay: wss://t.example.com:7443\ntoken: ${token}\ninspect: false\n`)
    chmodSync(file, mode)
  }
  write(TOKEN, 0o644)
  t.same((await loadAgentConfig(file)).warnings, [`${file}: readable by every user and contains a literal token; chmod 600 it or use token: env:NAME / file:/path`])
  write(TOKEN, 0o600)
  t.same((await loadAgentConfig(file)).warnings, [])
  write('env:PL_TEST_TOKEN', 0o644)
  t.same((await loadAgentConfig(file, { PL_TEST_TOKEN: TOKEN })).warnings, [], 'env: references are fine in a readable file')
  write('file:token', 0o644)
  t.same((await loadAgentConfig(file)).warnings, [])
  chmodSync(tokenFile, 0o644)
  t.same((await loadAgentConfig(file)).warnings, [`${tokenFile}: token file is readable by every user; chmod 600 it`])
})

t.test('YAML parser warnings are passed on', async (t) => {
  const dir = writeFiles(t.testdir(), { 'agent.yaml': `relay: wss://t.example.com\ntoken: !secret ${TOKEN}\ninspect: false\n` })
  const { config, warnings } = await loadAgentConfig(join(dir, 'agent.yaml'))
  t.equal(config.token, TOKEN)
  t.same(warnings, [`${join(dir, 'agent.yaml')}:2:8: Unresolved tag: !secret`])
})
