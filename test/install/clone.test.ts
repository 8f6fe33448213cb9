// Install path 1, from a clone: after `npm install` (or `npm ci`), both commands run through npx
// and node_modules/.bin, because npm links the committed bin/ shims whether or not dist/ exists yet.
import { copyFileSync, mkdirSync, readlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import t from 'tap'
import { cleanEnv, outsideDir, ROOT, run, VERSION } from './installed.js'

const BINS = { porchlight: 'packages/agent/bin/porchlight.js', 'porchlight-relay': 'packages/server/bin/porchlight-relay.js' }
const env = cleanEnv()

t.test('node_modules/.bin links the committed shims, not dist/', async t => {
  for (const [name, shim] of Object.entries(BINS)) {
    const link = join(ROOT, 'node_modules/.bin', name)
    t.equal(resolve(dirname(link), readlinkSync(link)), resolve(ROOT, 'node_modules', shim.replace(/^packages\/(agent|server)/, (_m, p: string) => `@porchlight/${p}`)), `${name} -> ${shim}`)
  }
})

t.test('npx porchlight --version and npx porchlight-relay --version print the package version', async t => {
  for (const name of ['porchlight', 'porchlight-relay']) {
    const res = await run('npx', ['--no-install', name, '--version'], { env, cwd: ROOT })
    t.equal(res.code, 0, res.stderr)
    t.equal(res.stdout, `${VERSION}\n`, `npx ${name} --version`)
  }
})

t.test('node_modules/.bin/porchlight-relay --help lists its commands', async t => {
  const res = await run(join(ROOT, 'node_modules/.bin/porchlight-relay'), ['--help'], { env, cwd: ROOT })
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, /^Usage: porchlight-relay /)
  for (const cmd of ['serve', 'check', 'token']) t.match(res.stdout, new RegExp(`\\n  ${cmd}\\b`))
})

t.test('a shim whose dist/ is not built yet says how to build it', async t => {
  for (const [name, shim] of Object.entries(BINS)) {
    const dir = outsideDir(t, 'shim')
    mkdirSync(join(dir, 'bin'))
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}')
    copyFileSync(join(ROOT, shim), join(dir, 'bin', `${name}.js`))
    const res = await run(process.execPath, [join(dir, 'bin', `${name}.js`), '--version'], { env, cwd: dir })
    t.equal(res.code, 1)
    t.equal(res.stdout, '')
    t.equal(res.stderr, `${name}: ${join(dir, 'dist/bundle/bin.js')} is not built yet: run \`npm run build\` in the checkout\n`)
  }
})

t.test('npm install -g ./packages/agent ./packages/server links both commands onto PATH', async t => {
  const prefix = outsideDir(t, 'link-prefix')
  const linked = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', join(ROOT, 'packages/agent'), join(ROOT, 'packages/server')], { env, cwd: prefix })
  t.equal(linked.code, 0, linked.stderr)
  // A link to the checkout (like `npm link`), so `npm run build` updates what is on PATH.
  t.equal(resolve(join(prefix, 'lib/node_modules/@porchlight'), readlinkSync(join(prefix, 'lib/node_modules/@porchlight/agent'))), join(ROOT, 'packages/agent'))
  const onPath = { ...env, PATH: `${join(prefix, 'bin')}:${env['PATH'] ?? ''}` }
  for (const name of ['porchlight', 'porchlight-relay']) {
    const res = await run(name, ['--version'], { env: onPath, cwd: prefix })
    t.equal(res.code, 0, res.stderr)
    t.equal(res.stdout, `${VERSION}\n`, `${name} --version`)
  }
})
