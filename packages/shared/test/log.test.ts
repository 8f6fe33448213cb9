// The log destination is bounded: a consumer that stops reading stdout (a stuck journald or pipe)
// must not make the process buffer log lines without limit (without the bound: about 345 MB here).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { BatchedLines } from '../src/log.js'

const SCRIPT = `
import { createLogger } from '@porchlight/shared/log'
const log = createLogger({ name: 'flood', pretty: false })
const line = 'x'.repeat(1024)
let written = 0
function batch() {
  for (let i = 0; i < 2000; i++) log.info({ line }, 'flood')
  written += 2000
  if (written < 200_000) { setImmediate(batch); return }
  globalThis.gc?.()
  process.stderr.write(JSON.stringify({ written, rss: process.memoryUsage().rss }) + '\\n')
  process.exit(0)
}
batch()
`

t.test('200 MB of log lines to a stdout nobody reads: the process stays small and keeps running', { timeout: 60_000 }, async t => {
  // env -u: without tap's process-info loader, which tap re-injects into every child's NODE_OPTIONS.
  const child = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, '--expose-gc', '--import=tsx', '--conditions=porchlight-source', '--input-type=module', '-e', SCRIPT], {
    cwd: fileURLToPath(new URL('../', import.meta.url)),
    // stdout is a pipe this test never reads: the kernel buffer fills after 64 KiB.
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PORCHLIGHT_LOG_LEVEL: 'info' },
  })
  let stderr = ''
  const reported = new Promise<void>(resolve => {
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString()
      if (stderr.includes('"rss"')) resolve()
    })
  })
  const exited = new Promise<number | null>(resolve => child.once('exit', resolve))
  await Promise.race([reported, exited])
  // Nobody will ever read what it kept: stop it rather than wait for pino's exit-time flush.
  child.kill('SIGKILL')
  await exited
  t.match(stderr, /"written":200000/, `the flood finished; stderr: ${stderr.slice(0, 300)}`)
  const report = JSON.parse(stderr.trim().split('\n').pop() ?? '{}') as { written: number; rss: number }
  t.equal(report.written, 200_000, 'every log call returned')
  const mb = report.rss / 1024 / 1024
  t.ok(mb < 200, `RSS ${mb.toFixed(1)} MB after 200 MB of unread log lines`)
})

t.test('BatchedLines: each line at once when quiet; under load one write per window, at once past 64 KiB; flushSync writes what waits', async t => {
  const writes: string[] = []
  const syncWrites: string[] = []
  let sinkFlushSyncs = 0
  const sink = { write: (d: string) => { writes.push(d); return true }, flush: (cb?: () => void) => cb?.(), flushSync: () => { sinkFlushSyncs++ } }
  const lines = new BatchedLines(sink, 20, (d) => syncWrites.push(d))
  lines.write('quiet\n')
  t.same(writes, ['quiet\n'], 'a quiet process writes its line at once')
  // 60 lines within 100 ms: from the next window on, the process counts as under load.
  for (let i = 0; i < 59; i++) lines.write(`warm ${i}\n`)
  t.equal(writes.length, 60, 'still one write per line while the rate is being measured')
  await new Promise(resolve => setTimeout(resolve, 110))
  writes.length = 0
  for (let i = 0; i < 50; i++) lines.write(`line ${i}\n`)
  t.equal(writes.length, 0, 'under load, nothing is written inside the window')
  await new Promise(resolve => setTimeout(resolve, 60))
  t.equal(writes.length, 1, 'the window left as one write')
  t.equal(writes[0]!.split('\n').length, 51)
  t.ok(writes[0]!.startsWith('line 0\n') && writes[0]!.endsWith('line 49\n'), 'in order')
  lines.write('x'.repeat(64 * 1024))
  t.equal(writes.length, 2, 'a 64 KiB batch is written at once')
  lines.write('last\n')
  lines.flushSync()
  t.equal(sinkFlushSyncs, 1, "the destination's own queue first")
  t.same(syncWrites, ['last\n'], 'then the lines of the open window, synchronously')
  await new Promise(resolve => setTimeout(resolve, 60))
  t.equal(writes.length, 2, 'flushSync cancelled the window')
  // Quiet again for two windows: lines go at once.
  await new Promise(resolve => setTimeout(resolve, 250))
  lines.write('calm\n')
  t.equal(writes.at(-1), 'calm\n', 'after the load, each line at once again')
})

function runLogger(script: string): Promise<{ stdout: string; ms: number }> {
  const child = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, '--import=tsx', '--conditions=porchlight-source', '--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('../', import.meta.url)),
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PORCHLIGHT_LOG_LEVEL: 'info' },
  })
  let stdout = ''
  const started = Date.now()
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  return new Promise(resolve => child.once('close', () => resolve({ stdout, ms: Date.now() - started })))
}

t.test('lines logged under load right before process.exit() still reach stdout', { timeout: 30_000 }, async t => {
  const { stdout } = await runLogger(`
import { createLogger } from '@porchlight/shared/log'
const log = createLogger({ name: 'exiting', pretty: false })
for (let i = 0; i < 200; i++) log.info({ i }, 'warm')
setTimeout(() => {
  for (let i = 0; i < 60; i++) log.info({ i }, 'busy')
  log.info('last words')
  process.exit(3)
}, 110)
`)
  const msgs = stdout.trim().split('\n').map(l => (JSON.parse(l) as { msg: string }).msg)
  t.equal(msgs.filter(m => m === 'warm').length, 200)
  t.equal(msgs.filter(m => m === 'busy').length, 60)
  t.equal(msgs.at(-1), 'last words')
})

t.test('a quiet process writes its line within the batch window, not only at exit', { timeout: 30_000 }, async t => {
  const child = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, '--import=tsx', '--conditions=porchlight-source', '--input-type=module', '-e', `
import { createLogger } from '@porchlight/shared/log'
const log = createLogger({ name: 'quiet', pretty: false })
log.info('hello')
setInterval(() => {}, 1000)
`], { cwd: fileURLToPath(new URL('../', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, PORCHLIGHT_LOG_LEVEL: 'info' } })
  let stdout = ''
  const seen = await new Promise<boolean>(resolve => {
    const timer = setTimeout(() => resolve(false), 15_000)
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString()
      if (stdout.includes('"msg":"hello"')) { clearTimeout(timer); resolve(true) }
    })
  })
  // SIGKILL: no exit handler runs, so the line came from the window's timer.
  child.kill('SIGKILL')
  t.ok(seen, `the line arrived while the process ran; stdout: ${stdout.slice(0, 200)}`)
})
