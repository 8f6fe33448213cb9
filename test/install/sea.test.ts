// Install path 3, single executables: `npm run dist:sea` builds `porchlight` and `porchlight-relay`;
// copied alone into an empty directory and run with a PATH that has no node, they serve a visitor.
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { cleanEnv, guidedSetup, outsideDir, ROOT, run, serveVisitor, VERSION } from './installed.js'

const built = outsideDir(t, 'sea-build')
const build = await run(process.execPath, [join(ROOT, 'scripts/sea.mjs'), '--out', built], { env: cleanEnv(), cwd: ROOT, timeoutMs: 180_000 })

// A machine without Node: the executables alone in a directory outside the checkout, a PATH of one
// empty directory (so neither `node` nor anything of this machine's Node install is found).
const bare = outsideDir(t, 'sea-bare')
const emptyPath = join(bare, 'empty-path')
mkdirSync(emptyPath)
const env = { PATH: emptyPath, LANG: 'C' }
for (const name of ['porchlight', 'porchlight-relay']) {
  if (existsSync(join(built, name))) copyFileSync(join(built, name), join(bare, name))
}

t.test('npm run dist:sea builds both executables', async t => {
  t.equal(build.code, 0, build.stderr)
  t.match(build.stdout, /porchlight: \d+\.\d MB, node v20\.\d+\.\d+ linux-x64/)
  t.match(build.stdout, /porchlight-relay: \d+\.\d MB/)
  for (const name of ['porchlight', 'porchlight-relay']) {
    t.ok((statSync(join(bare, name)).mode & 0o111) !== 0, `${name} is executable`)
  }
  t.same(readdirSync(bare).sort(), ['empty-path', 'porchlight', 'porchlight-relay'], 'nothing else beside them')
})

t.test('--version of both without node on PATH', async t => {
  for (const name of ['porchlight', 'porchlight-relay']) {
    const res = await run(join(bare, name), ['--version'], { env, cwd: bare })
    t.equal(res.code, 0, res.stderr)
    t.equal(res.stdout, `${VERSION}\n`, `${name} --version`)
    t.equal(res.stderr, '', 'no SEA or require() warnings')
  }
})

t.test('porchlight-relay --help and a usage error keep their exit codes', async t => {
  const help = await run(join(bare, 'porchlight-relay'), ['--help'], { env, cwd: bare })
  t.equal(help.code, 0, help.stderr)
  t.match(help.stdout, /^Usage: porchlight-relay /)
  t.equal(help.stderr, '')
  const bad = await run(join(bare, 'porchlight-relay'), ['no-such-command'], { env, cwd: bare })
  t.equal(bad.code, 2)
})

t.test('the executables serve a visitor with no node and no node_modules', async t => {
  const served = await serveVisitor(t, { relay: join(bare, 'porchlight-relay'), agent: join(bare, 'porchlight'), env, dir: bare })
  t.equal(served.check.code, 0, served.check.stderr)
  t.match(served.check.stdout, /relay\.yaml: ok \(1 agents\)/)
  t.notMatch(served.check.stderr, /Warning/)
  t.notMatch(served.output, /Warning|single-executable/, 'no SEA warnings from serve or up')
  t.equal(served.visit.status, 200)
  t.equal(served.visit.text, 'served by the installed agent')
})

t.test('guided set-up from the executables: init, serve, agent add, login, http PORT -> 200', async t => {
  const g = await guidedSetup(t, { relay: join(bare, 'porchlight-relay'), agent: join(bare, 'porchlight'), env, dir: outsideDir(t, 'sea-guided') })
  t.equal(g.init.code, 0, g.init.stderr)
  t.equal(g.add.code, 0, g.add.stderr)
  t.equal(g.login.code, 0, g.login.stderr)
  t.match(g.login.stdout, /link ok: the relay welcomed agent laptop/)
  t.match(g.publicUrl.hostname, /^[a-z0-9-]+\.laptop\.tunnel\.example\.com$/)
  t.equal(g.visit.status, 200)
  t.equal(g.visit.text, 'hello from the laptop')
  t.notMatch(g.output, /Warning|single-executable/, 'no SEA warnings')
})
