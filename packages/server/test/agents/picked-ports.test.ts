import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import t from 'tap'
import { MAX_REMEMBERED_PICKS, PickedPorts } from '../../src/agents/picked-ports.js'

function capture(): { log: pino.Logger; warnings: () => string[] } {
  const lines: string[] = []
  const log = pino({ level: 'warn' }, { write: (line: string) => { lines.push(line) } })
  return { log, warnings: () => lines.map((l) => (JSON.parse(l) as { msg: string }).msg) }
}

t.test('without a state directory picks live in memory only', async (t) => {
  const picks = new PickedPorts(null, capture().log)
  picks.set('home', 'ssh', 2222)
  t.equal(picks.get('home', 'ssh'), 2222)
  t.equal(picks.get('home', 'web'), undefined)
  picks.forget('home', 'ssh')
  t.equal(picks.size, 0)
})

t.test('with a state directory a new instance (a restarted relay) gets the same picks back', async (t) => {
  const dir = join(t.testdir(), 'state')
  const first = new PickedPorts(dir, capture().log)
  first.set('home', 'ssh', 2222)
  first.set('laptop', 'db', 5432)
  first.forget('laptop', 'db')
  t.equal(statSync(join(dir, 'tcp-ports.json')).mode & 0o777, 0o600)
  const second = new PickedPorts(dir, capture().log)
  t.equal(second.get('home', 'ssh'), 2222)
  t.equal(second.get('laptop', 'db'), undefined, 'a forgotten pick stays forgotten')
  t.same(JSON.parse(readFileSync(join(dir, 'tcp-ports.json'), 'utf8')), { version: 1, picks: [['home', 'ssh', 2222]] })
})

t.test('bounded: the oldest pick goes first', async (t) => {
  const picks = new PickedPorts(null, capture().log)
  for (let i = 0; i <= MAX_REMEMBERED_PICKS; i++) picks.set('a', `t${i}`, 10_000 + (i % 50_000))
  t.equal(picks.size, MAX_REMEMBERED_PICKS)
  t.equal(picks.get('a', 't0'), undefined)
  t.equal(picks.get('a', `t${MAX_REMEMBERED_PICKS}`), 10_000 + MAX_REMEMBERED_PICKS)
})

t.test('a damaged file is reported once and ignored; bad entries are skipped', async (t) => {
  const dir = t.testdir({ 'tcp-ports.json': 'not json' })
  const bad = capture()
  t.equal(new PickedPorts(dir, bad.log).size, 0)
  t.same(bad.warnings(), ['remembered tcp ports file is invalid; starting without it'])
  writeFileSync(join(dir, 'tcp-ports.json'), JSON.stringify({ version: 1, picks: [['home', 'ssh', 2222], ['home', 'x', 70_000], ['only-two', 1], 'junk'] }))
  const partial = new PickedPorts(dir, capture().log)
  t.equal(partial.size, 1)
  t.equal(partial.get('home', 'ssh'), 2222)
})
