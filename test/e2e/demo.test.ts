// `npm start` runs packages/server/dist/demo.js: a relay, a sample site and the real agent binary.
// It must print a demo.localhost URL that curl can fetch, and stop cleanly on Ctrl-C (SIGINT).
import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from './harness/processes.js'
import { curl } from './harness/visitor.js'

t.test('the demo prints a working URL and stops on SIGINT', async t => {
  const child = spawn(process.execPath, [join(ROOT, 'packages/server/dist/demo.js')], {
    env: { ...process.env, PORCHLIGHT_DEMO_PORT: '0', HOME: t.testdir() },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (s: string) => { out += s })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL within 15 s:\n${out}`)), 15_000)
    child.stdout.on('data', (s: string) => {
      out += s
      const m = /(http:\/\/demo\.localhost:\d+\/)/.exec(out)
      if (m) { clearTimeout(timer); resolve(m[1]!) }
    })
  })
  t.match(url, /^http:\/\/demo\.localhost:\d+\/$/)
  const port = new URL(url).port
  // curl resolves *.localhost to loopback itself; --resolve keeps the test independent of that.
  const page = await curl(['--resolve', `demo.localhost:${port}:127.0.0.1`, '-w', '\n%{http_code}', url])
  t.equal(page.code, 0, page.stderr)
  t.match(page.stdout, /Hello from the laptop/)
  t.match(page.stdout, /\n200$/)
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  child.kill('SIGINT')
  t.equal(await exited, 0, 'exit code 0 after Ctrl-C')
})
