import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const HOLD_MODULE = fileURLToPath(new URL('../src/optimizer-hold.ts', import.meta.url))

/**
 * A fresh process (with --trace-opt) that runs one hot function for a while with the hold on, then
 * `after`, then the same again; prints a marker between the two phases.
 */
function traceOptimized(after: 'release' | 'nothing'): Promise<{ held: string; then: string }> {
  const source = `
    const hold = await import(${JSON.stringify(HOLD_MODULE)})
    hold.holdOptimizer()
    function hot(n) { let s = 0; for (let i = 0; i < n; i++) s = (s + i * 31) % 1000003; return s }
    const spin = async () => { for (let k = 0; k < 200; k++) { hot(20000); if (k % 20 === 0) await new Promise((r) => setTimeout(r, 1)) } }
    await spin()
    process.stdout.write('\\n=== phase 2 held=' + hold.optimizerHeld() + '\\n')
    ${after === 'release' ? 'hold.releaseOptimizer()' : ''}
    await spin()
    process.stdout.write('\\n=== end held=' + hold.optimizerHeld() + '\\n')
  `
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--trace-opt', '--import=tsx', '--input-type=module', '-e', source], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NODE_OPTIONS: '' } }, (err, stdout) => {
      if (err) { reject(err); return }
      const [held = '', then = ''] = stdout.split('=== phase 2')
      resolve({ held, then })
    })
  })
}

const optimizedHot = (text: string): boolean => /completed optimizing [^\n]*<JSFunction hot /.test(text)

t.test('holdOptimizer(): a hot function is not optimized; after releaseOptimizer() it is', async (t) => {
  const [released, kept] = await Promise.all([traceOptimized('release'), traceOptimized('nothing')])
  t.notOk(optimizedHot(released.held), 'held: hot() not optimized')
  t.match(released.then, /held=false/, 'optimizerHeld() is false after releaseOptimizer()')
  t.ok(optimizedHot(released.then), 'released: hot() optimized')
  t.match(kept.then, /held=true/, 'without a release the hold stays (within its 10 s deadline)')
  t.notOk(optimizedHot(kept.then), 'never released: hot() still not optimized')
})
