import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import type { Scope } from './scope.js'
import { ChildHandle, childEnv } from './child.js'
import { freePort } from './ports.js'
import { childDir } from './workdir.js'

export const NGINX_BIN = '/usr/sbin/nginx'

export interface NginxVhost {
  server_name: string
  /** Body every request to this vhost gets (200, text/plain); plain characters only. */
  body: string
}

export interface NginxOrigin {
  port: number
  url: string
  dir: string
  /** nginx's error log so far (for failure messages). */
  errorLog(): string
}

/** Body of the catch-all server, so a Host header that was not rewritten is visible in a test. */
export const NGINX_DEFAULT_BODY = 'nginx default vhost'

/**
 * Why an nginx test should be skipped, or null when it must run. Only a developer machine without
 * nginx skips; in CI a missing nginx is a failure (.ci/run installs it).
 */
export function nginxMissingReason(): string | null {
  if (existsSync(NGINX_BIN)) return null
  if (process.env['CI']) return null
  return `${NGINX_BIN} not found; install nginx-light (apt-get install -y nginx-light) to run the virtual-host tests`
}

/**
 * Runs a private nginx (no daemon, one process, everything under a temp dir) on a free loopback
 * port, with one server block per vhost returning its body and a default server that says so.
 */
export async function startNginx(t: Scope, vhosts: NginxVhost[]): Promise<NginxOrigin> {
  if (!existsSync(NGINX_BIN)) throw new Error(`${NGINX_BIN} is missing (CI installs nginx-light in .ci/run)`)
  const dir = childDir(t, 'nginx')
  mkdirSync(join(dir, 'logs'), { recursive: true })
  mkdirSync(join(dir, 'tmp'), { recursive: true })
  // Another process can take the port between freePort() and nginx's bind; try a few.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort()
    const conf = join(dir, 'nginx.conf')
    writeFileSync(conf, nginxConf(dir, port, vhosts))
    const child = new ChildHandle(t, {
      label: 'nginx',
      command: NGINX_BIN,
      args: ['-p', `${dir}/`, '-c', conf, '-e', join(dir, 'logs/error.log')],
      env: childEnv(dir),
      cwd: dir,
    })
    const errorLog = (): string => { try { return readFileSync(join(dir, 'logs/error.log'), 'utf8') } catch { return '' } }
    if (await waitForPort(port, child, 5000)) return { port, url: `http://127.0.0.1:${port}`, dir, errorLog }
    await child.kill('SIGKILL')
    if (!/in use/i.test(errorLog()) || attempt === 3) throw new Error(`nginx did not start on 127.0.0.1:${port}:\n${errorLog()}\n${child.stderrLines.join('\n')}`)
  }
  throw new Error('unreachable')
}

function nginxConf(dir: string, port: number, vhosts: NginxVhost[]): string {
  const listen = `listen 127.0.0.1:${port}`
  const servers = vhosts.map(v => {
    if (!/^[a-z0-9.-]+$/i.test(v.server_name) || !/^[\w .:-]*$/.test(v.body)) throw new Error(`startNginx: unsafe vhost ${JSON.stringify(v)}`)
    return `  server { ${listen}; server_name ${v.server_name}; location / { return 200 "${v.body}"; } }`
  })
  const tmp = join(dir, 'tmp')
  const tempPaths = ['client_body', ...presentTempModules()].map(m => `  ${m}_temp_path ${tmp}/${m};`)
  return [
    'daemon off;',
    // One process as the invoking user: as root (CI) nginx would otherwise switch workers to nobody.
    'master_process off;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/logs/error.log warn;`,
    'events { worker_connections 256; }',
    'http {',
    '  access_log off;',
    '  default_type text/plain;',
    ...tempPaths,
    `  server { ${listen} default_server; server_name _; return 421 "${NGINX_DEFAULT_BODY}"; }`,
    ...servers,
    '}',
    '',
  ].join('\n')
}

let tempModules: string[] | undefined

/** Temp-path directives only exist for modules compiled in; nginx-light leaves some out. */
function presentTempModules(): string[] {
  if (tempModules) return tempModules
  // nginx -V prints its build flags on stderr.
  const version = spawnSync(NGINX_BIN, ['-V'], { encoding: 'utf8' })
  const build = `${version.stdout}${version.stderr}`
  tempModules = ['proxy', 'fastcgi', 'uwsgi', 'scgi'].filter(m => !build.includes(`--without-http_${m}_module`))
  return tempModules
}

/** Polls a TCP connect (nginx prints nothing when ready); false if the child exits or time runs out. */
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
