// The log destination is bounded: a consumer that stops reading stdout (a stuck journald or pipe)
// must not make the process buffer log lines without limit (without the bound: about 345 MB here).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

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
