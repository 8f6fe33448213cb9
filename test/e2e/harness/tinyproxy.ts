import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import type { Scope } from './scope.js'
import { ChildHandle, childEnv } from './child.js'
import { freePort } from './ports.js'
import { childDir } from './workdir.js'

export const TINYPROXY_BIN = '/usr/bin/tinyproxy'

export interface Tinyproxy {
  port: number
  /** http://127.0.0.1:PORT, for HTTPS_PROXY or agent.yaml `proxy:`. */
  url: string
  /** tinyproxy's log so far (CONNECT lines name the target). */
  log(): string
}

/**
 * Why a CONNECT-proxy test should be skipped, or null when it must run. Only a developer machine
 * without tinyproxy skips; in CI a missing tinyproxy is a failure (.ci/run installs it).
 */
export function tinyproxyMissingReason(): string | null {
  if (existsSync(TINYPROXY_BIN)) return null
  if (process.env['CI']) return null
  return `${TINYPROXY_BIN} not found; install tinyproxy (apt-get install -y tinyproxy) to run the CONNECT proxy tests`
}

/**
 * Runs a private tinyproxy in the foreground on a free loopback port, everything under a temp dir:
 * only 127.0.0.1 may use it, and CONNECT only to `connectPorts` (tinyproxy's ConnectPort).
 */
export async function startTinyproxy(t: Scope, opts: { connectPorts: number[] }): Promise<Tinyproxy> {
  if (!existsSync(TINYPROXY_BIN)) throw new Error(`${TINYPROXY_BIN} is missing (CI installs tinyproxy in .ci/run)`)
  const dir = childDir(t, 'tinyproxy')
  const logFile = join(dir, 'tinyproxy.log')
  const log = (): string => { try { return readFileSync(logFile, 'utf8') } catch { return '' } }
  // Another process can take the port between freePort() and tinyproxy's bind; try a few.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort()
    const conf = join(dir, 'tinyproxy.conf')
    writeFileSync(conf, [
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 30',
      'MaxClients 20',
      'Allow 127.0.0.1',
      ...opts.connectPorts.map(p => `ConnectPort ${p}`),
      `LogFile "${logFile}"`,
      'LogLevel Info',
      `PidFile "${join(dir, 'tinyproxy.pid')}"`,
      '',
    ].join('\n'))
    const child = new ChildHandle(t, { label: 'tinyproxy', command: TINYPROXY_BIN, args: ['-d', '-c', conf], env: childEnv(dir), cwd: dir })
    if (await waitForPort(port, child, 5000)) return { port, url: `http://127.0.0.1:${port}`, log }
    await child.kill('SIGKILL')
    if (attempt === 3) throw new Error(`tinyproxy did not start on 127.0.0.1:${port}:\n${log()}\n${child.stderrLines.join('\n')}`)
  }
  throw new Error('unreachable')
}

/** Polls a TCP connect (tinyproxy prints nothing when ready); false if it exits or time runs out. */
async function waitForPort(port: number, child: ChildHandle, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && child.running) {
    const ok = await new Promise<boolean>(resolve => {
      const s = connect(port, '127.0.0.1')
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => resolve(false))
    })
    if (ok) return true
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return false
}
