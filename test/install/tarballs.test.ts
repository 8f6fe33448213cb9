// Install path 2, npm packages: `npm run dist` packs three tarballs; installing them globally into
// an empty prefix gives `porchlight` and `porchlight-relay` on PATH, which then serve a visitor.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import t from 'tap'
import { cleanEnv, guidedSetup, outsideDir, ROOT, run, serveVisitor, VERSION } from './installed.js'

const out = outsideDir(t, 'dist')
const packed = await run(process.execPath, [join(ROOT, 'scripts/dist.mjs'), '--out', out], { env: cleanEnv(), cwd: ROOT, timeoutMs: 180_000 })
const names = ['shared', 'agent', 'server'].map(p => `porchlight-${p}-${VERSION}.tgz`)

// One install for the tests below: all three tarballs in one command, into an empty prefix. Node
// itself stays on PATH (these are npm packages); nothing of the checkout is.
const prefix = outsideDir(t, 'prefix')
const env = cleanEnv({ PATH: [join(prefix, 'bin'), dirname(process.execPath), '/usr/bin', '/bin'].join(':') })
const installed = packed.code !== 0
  ? packed
  : await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', ...names.map(n => join(out, n))], { env, cwd: prefix, timeoutMs: 180_000 })

interface PackedManifest {
  name: string
  private?: boolean
  bin?: Record<string, string>
  dependencies?: Record<string, string>
  scripts?: Record<string, string>
}

function tarList(file: string): string[] {
  return execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).split('\n').filter(Boolean)
}

function tarManifest(file: string): PackedManifest {
  return JSON.parse(execFileSync('tar', ['-xzOf', file, 'package/package.json'], { encoding: 'utf8' })) as PackedManifest
}

/** Each package's build on `npm pack`: tsc, and for the two commands the bundle their bin/ shim runs. */
const PREPACK: Record<string, string> = {
  '@porchlight/shared': 'tsc -b',
  '@porchlight/agent': 'tsc -b && node ../../scripts/bundle.mjs agent',
  '@porchlight/server': 'tsc -b && node ../../scripts/bundle.mjs relay',
}

t.test('npm run dist writes one tarball per package', async t => {
  t.equal(packed.code, 0, packed.stderr)
  t.same(readdirSync(out).filter(f => f.endsWith('.tgz')).sort(), [...names].sort())
  t.equal(packed.stdout.trim().split('\n').length, 3)
})

t.test('each tarball is publishable and declares what it imports', async t => {
  const [shared, agent, server] = names.map(n => join(out, n)) as [string, string, string]
  for (const file of [shared, agent, server]) {
    const m = tarManifest(file)
    t.equal(m.private, undefined, `${m.name} is not private`)
    t.equal(m.scripts?.['prepack'], PREPACK[m.name ?? ''], `${m.name} builds on prepack`)
    const files = tarList(file)
    if (m.name !== '@porchlight/shared') t.ok(files.includes('package/dist/bundle/bin.js') && files.includes('package/dist/bundle/manifest.json'), `${m.name} ships its bundle (what bin/ runs)`)
    t.ok(files.some(f => f.startsWith('package/dist/') && f.endsWith('.js')), `${m.name} ships dist/`)
    t.same(files.filter(f => /^package\/(src|test|bench)\//.test(f) || f.endsWith('.tsbuildinfo') || f.endsWith('.map')), [], `${m.name} ships no sources, tests, maps or build info`)
  }
  const a = tarManifest(agent)
  t.same(a.bin, { porchlight: './bin/porchlight.js' })
  t.equal(a.dependencies?.['@porchlight/shared'], VERSION)
  t.ok(a.dependencies?.['zod'], 'the agent declares zod (inspect.ts imports it)')
  t.ok(tarList(agent).includes('package/dist/bin.js'))
  const s = tarManifest(server)
  t.same(s.bin, { 'porchlight-relay': './bin/porchlight-relay.js' })
  t.equal(s.dependencies?.['@porchlight/shared'], VERSION)
})

t.test('npm install -g into an empty prefix: both commands on PATH serve a visitor', async t => {
  const work = outsideDir(t, 'work')
  t.equal(installed.code, 0, installed.stderr)
  t.same(readdirSync(join(prefix, 'bin')).sort(), ['porchlight', 'porchlight-relay'])
  t.notOk(existsSync(join(prefix, 'lib/node_modules/@porchlight/agent/node_modules/@porchlight')), 'the agent uses the shared package installed next to it')

  for (const name of ['porchlight', 'porchlight-relay']) {
    const version = await run(name, ['--version'], { env, cwd: work })
    t.equal(version.code, 0, version.stderr)
    t.equal(version.stdout, `${VERSION}\n`, `${name} --version`)
  }

  const served = await serveVisitor(t, { relay: 'porchlight-relay', agent: 'porchlight', env, dir: work })
  t.equal(served.check.code, 0, served.check.stderr)
  t.match(served.check.stdout, /relay\.yaml: ok \(1 agents\)/)
  t.equal(served.visit.status, 200)
  t.equal(served.visit.text, 'served by the installed agent')
})

t.test('guided set-up from the installed packages: init, serve, agent add, login, http PORT -> 200', async t => {
  t.equal(installed.code, 0, installed.stderr)
  const g = await guidedSetup(t, { relay: 'porchlight-relay', agent: 'porchlight', env, dir: outsideDir(t, 'npm-guided') })
  t.equal(g.init.code, 0, g.init.stderr)
  t.equal(g.add.code, 0, g.add.stderr)
  t.equal(g.login.code, 0, g.login.stderr)
  t.match(g.publicUrl.hostname, /^[a-z0-9-]+\.laptop\.tunnel\.example\.com$/)
  t.equal(g.visit.status, 200)
  t.equal(g.visit.text, 'hello from the laptop')
})
