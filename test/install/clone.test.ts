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

t.test('npx porchlight --version prints the package version', async t => {
  const res = await run('npx', ['--no-install', 'porchlight', '--version'], { env, cwd: ROOT })
  t.equal(res.code, 0, res.stderr)
  t.equal(res.stdout.trim(), VERSION)
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
    t.equal(res.stderr, `${name}: ${join(dir, 'dist/bin.js')} is not built yet: run \`npm run build\` in the checkout\n`)
  }
})
