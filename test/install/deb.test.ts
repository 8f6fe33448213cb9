// Install path 4, the Debian package: `npm run dist:deb` builds porchlight_V_ARCH.deb; `dpkg -i`
// installs the executables, units that `systemd-analyze verify` accepts, the `porchlight` user and
// its directories; the installed relay checks a config; `dpkg --purge` leaves nothing behind.
// Changes this machine (a package, a system user), so it runs only as root, as CI does.
import { execFileSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { cleanEnv, outsideDir, ROOT, run, VERSION } from './installed.js'

const TOOLS = ['dpkg', 'dpkg-deb', 'systemd-analyze', 'adduser']
const UNITS = ['/lib/systemd/system/porchlight-relay.service', '/lib/systemd/system/porchlight-agent.service']

function has(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function skipReason(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `the package is built for linux-x64, this is ${process.platform}-${process.arch}`
  if (process.getuid?.() !== 0) return 'dpkg -i needs root (CI runs as root)'
  const missing = TOOLS.filter(tool => !has(tool))
  if (missing.length > 0) return `missing ${missing.join(', ')} (.ci/run installs systemd)`
  const status = dpkgStatus()
  if (status !== null) return `a porchlight package is already installed here (${status}); not touching it`
  return null
}

function dpkgStatus(): string | null {
  try {
    const status = execFileSync('dpkg-query', ['-W', '-f=${Status}', 'porchlight'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    return status.includes('not-installed') ? null : status
  } catch {
    return null
  }
}

const reason = skipReason()
if (reason !== null) {
  t.plan(0, `skipped: ${reason}`)
} else {
  const env = cleanEnv()
  const out = outsideDir(t, 'deb')
  const deb = join(out, `porchlight_${VERSION}_amd64.deb`)
  const built = await run(process.execPath, [join(ROOT, 'scripts/deb.mjs'), '--sea', join(out, 'sea'), '--out', out], { env, cwd: ROOT, timeoutMs: 180_000 })
  // Whatever happens below, the machine ends without the package, its user and its directories.
  t.teardown(async () => { if (dpkgStatus() !== null) await run('dpkg', ['--purge', 'porchlight'], { env, cwd: out }) })

  t.test('npm run dist:deb builds porchlight_VERSION_amd64.deb', async t => {
    t.equal(built.code, 0, built.stderr)
    t.ok(existsSync(deb), deb)
    const info = execFileSync('dpkg-deb', ['--field', deb, 'Package', 'Version', 'Architecture', 'Depends'], { encoding: 'utf8' })
    t.equal(info, `Package: porchlight\nVersion: ${VERSION}\nArchitecture: amd64\nDepends: adduser\n`)
    const files = execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8' })
    for (const f of ['./usr/bin/porchlight', './usr/bin/porchlight-relay', ...UNITS.map(u => `.${u}`), './usr/share/doc/porchlight/examples/relay.yaml']) {
      t.match(files, new RegExp(`root/root .* ${f.replace(/\./g, '\\.')}\\n`), f)
    }
  })

  t.test('dpkg -i, units verify, the installed relay checks a config, dpkg --purge cleans up', async t => {
    const installed = await run('dpkg', ['-i', deb], { env, cwd: out })
    t.equal(installed.code, 0, installed.stderr)
    t.match(installed.stdout, /Next step on the relay server:\n  sudo porchlight-relay init --domain tunnel\.example\.com /, 'postinst prints the next step')
    t.notMatch(installed.stderr, /warning/i, installed.stderr)

    t.match(execFileSync('id', ['porchlight'], { encoding: 'utf8' }), /^uid=\d+\(porchlight\) gid=\d+\(porchlight\)/)
    t.equal(execFileSync('getent', ['passwd', 'porchlight'], { encoding: 'utf8' }).trim().split(':').slice(5).join(':'), '/var/lib/porchlight:/usr/sbin/nologin')
    t.equal(statSync('/etc/porchlight').mode & 0o7777, 0o750)
    t.equal(statSync('/var/lib/porchlight').mode & 0o7777, 0o750)

    const verify = await run('systemd-analyze', ['verify', ...UNITS], { env, cwd: out })
    t.equal(verify.code, 0, verify.stderr)
    t.equal(verify.stderr.split('\n').filter(l => /porchlight/.test(l)).join('\n'), '', 'no complaints about the porchlight units')
    for (const unit of UNITS) {
      const exec = execFileSync('grep', ['^ExecStart=', unit], { encoding: 'utf8' })
      t.match(exec, /^ExecStart=\/usr\/bin\/porchlight(-relay)? /, `${unit} runs the installed executable`)
    }

    for (const exe of ['/usr/bin/porchlight', '/usr/bin/porchlight-relay']) {
      const version = await run(exe, ['--version'], { env, cwd: out })
      t.equal(version.stdout, `${VERSION}\n`, `${exe} --version ${version.stderr}`)
    }
    const check = await run('/usr/bin/porchlight-relay', ['check', '-c', join(ROOT, 'deploy/examples/relay-minimal.yaml')], { env, cwd: out })
    t.equal(check.code, 0, check.stderr)
    t.match(check.stdout, /relay-minimal\.yaml: ok \(1 agents\)/)

    // The next step postinst prints, literally (without sudo: this test is root).
    const init = await run('/usr/bin/porchlight-relay', ['init', '--domain', 'tunnel.example.com'], { env, cwd: out })
    t.equal(init.code, 0, init.stderr)
    t.equal(statSync('/etc/porchlight/relay.yaml').mode & 0o777, 0o640)
    t.equal(statSync('/var/lib/porchlight/pki').uid, Number(execFileSync('id', ['-u', 'porchlight'], { encoding: 'utf8' })), 'the PKI belongs to the service user')
    const added = await run('/usr/bin/porchlight-relay', ['agent', 'add', 'laptop'], { env, cwd: out })
    t.equal(added.code, 0, added.stderr)
    t.match(added.stdout, /^porchlight login pl1_\S+$/m)
    const checked = await run('/usr/bin/porchlight-relay', ['check', '-c', '/etc/porchlight/relay.yaml'], { env, cwd: out })
    t.equal(checked.code, 0, checked.stderr)
    t.match(checked.stdout, /\/etc\/porchlight\/relay\.yaml: ok \(1 agents\)/)

    const purged = await run('dpkg', ['--purge', 'porchlight'], { env, cwd: out })
    t.equal(purged.code, 0, purged.stderr)
    t.equal(dpkgStatus(), null, 'package gone')
    for (const path of ['/usr/bin/porchlight', '/usr/bin/porchlight-relay', ...UNITS, '/etc/porchlight', '/var/lib/porchlight']) t.notOk(existsSync(path), `${path} removed`)
    t.equal((await run('getent', ['passwd', 'porchlight'], { env, cwd: out })).code, 2, 'user removed')
    t.equal((await run('getent', ['group', 'porchlight'], { env, cwd: out })).code, 2, 'group removed')
  })
}
