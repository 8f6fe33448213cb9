// `porchlight status` / `link` find an agent whose status API fell back to another port: the agent
// records the address it bound in a runtime file (0600, removed on exit) keyed by its config path.
import t from 'tap'
import { EventEmitter } from 'node:events'
import { readdirSync, statSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { AgentConfig } from '@porchlight/shared/config'
import { runAgent } from '../src/commands/run-agent.js'
import { callAgent } from '../src/inspect-client.js'
import { findRuntimeAddresses, removeRuntimeFile, runtimeDir, writeRuntimeFile } from '../src/runtime-file.js'
import { startFakeRelay, TEST_TOKEN } from './helpers/fake-relay.js'
import { memoryLogger } from './helpers/log.js'

t.test('runtimeDir: $XDG_RUNTIME_DIR/porchlight, else the config dir\'s run/', async (t) => {
  t.equal(runtimeDir({ env: { XDG_RUNTIME_DIR: '/run/user/1000' } }), '/run/user/1000/porchlight')
  t.equal(runtimeDir({ env: { XDG_CONFIG_HOME: '/x/cfg' } }), '/x/cfg/porchlight/run')
  t.equal(runtimeDir({ env: { XDG_RUNTIME_DIR: 'relative' }, homeDir: '/home/u' }), '/home/u/.config/porchlight/run')
})

t.test('write, find by config and live pid, remove', async (t) => {
  const env = { XDG_RUNTIME_DIR: t.testdir() }
  const live = new Set([101, 102, 103])
  const deps = { env, isAlive: (pid: number) => live.has(pid) }
  const a = writeRuntimeFile({ pid: 101, config: '/home/u/agent.yaml', inspect: '127.0.0.1:4041' }, deps)
  writeRuntimeFile({ pid: 102, config: '/home/u/other.yaml', inspect: '127.0.0.1:4042' }, deps)
  writeRuntimeFile({ pid: 103, config: '/home/u/agent.yaml', inspect: '[::1]:4043' }, deps)
  writeRuntimeFile({ pid: 104, config: '/home/u/agent.yaml', inspect: '127.0.0.1:4044' }, deps)
  writeFileSync(join(runtimeDir(deps), '105.json'), 'not json')
  writeFileSync(join(runtimeDir(deps), 'notes.txt'), 'ignored')
  live.add(105)
  t.equal(statSync(a).mode & 0o777, 0o600)
  t.equal(statSync(runtimeDir(deps)).mode & 0o777, 0o700)
  t.same(findRuntimeAddresses('/home/u/agent.yaml', deps), [{ host: '127.0.0.1', port: 4041 }, { host: '::1', port: 4043 }], 'same config, live pids only')
  t.notOk(readdirSync(runtimeDir(deps)).includes('104.json'), 'a dead pid\'s file is removed')
  removeRuntimeFile(a)
  t.same(findRuntimeAddresses('/home/u/agent.yaml', deps), [{ host: '::1', port: 4043 }])
  t.same(findRuntimeAddresses('/x.yaml', { env: { XDG_RUNTIME_DIR: join(env.XDG_RUNTIME_DIR, 'missing') } }), [], 'no directory: nothing')
})

t.test('status finds an agent on its fallback port through the runtime file, which goes on exit', async (t) => {
  const relay = await startFakeRelay(t)
  // The configured port is taken by something that is not an agent (it drops every connection).
  const blocker = net.createServer((s) => s.destroy())
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
  const taken = (blocker.address() as AddressInfo).port
  const inspect = { host: '127.0.0.1', port: taken }
  const config: AgentConfig = { relay: relay.url, token: TEST_TOKEN, cert: null, ca: null, tunnels: [], inspect }
  const env = { XDG_RUNTIME_DIR: t.testdir() }
  const configFile = '/home/u/.config/porchlight/agent.yaml'
  const deps = { env, cwd: '/home/u', loadConfig: async () => ({ config, warnings: [] }) }

  await t.rejects(callAgent(configFile, 'GET', '/api/status', undefined, deps), { code: 'PL_ERR_AGENT_NOT_RUNNING' }, 'nothing running yet')

  const signals = new EventEmitter()
  const out: string[] = []
  const inspected = new Promise<void>((resolve) => {
    const io = { out: (l: string) => { out.push(l); if (l.startsWith('Status API')) resolve() }, err: (l: string) => out.push(l) }
    const exit = runAgent({ config, log: memoryLogger().log, io, debug: false, quick: false, signals, configFile, runtime: { env } })
    t.teardown(async () => {
      signals.emit('SIGTERM', 'SIGTERM')
      await exit
    })
    void exit.then((code) => out.push(`exit ${code}`))
  })
  await inspected
  const files = readdirSync(runtimeDir({ env }))
  t.same(files, [`${process.pid}.json`])
  const status = (await callAgent(configFile, 'GET', '/api/status', undefined, deps)) as { inspect: string }
  t.not(status.inspect, `127.0.0.1:${taken}`)
  t.match(status.inspect, /^127\.0\.0\.1:\d+$/, 'answered by the agent on its fallback port')
  await t.rejects(callAgent('/home/u/other.yaml', 'GET', '/api/status', undefined, deps), { code: 'PL_ERR_AGENT_NOT_RUNNING' }, 'another config does not match')

  signals.emit('SIGTERM', 'SIGTERM')
  await t.resolveMatch(new Promise((resolve) => { const timer = setInterval(() => { if (out.includes('exit 0')) { clearInterval(timer); resolve(true) } }, 20) }), true)
  t.same(readdirSync(runtimeDir({ env })), [], 'removed on exit')
})
