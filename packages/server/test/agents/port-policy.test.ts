import t from 'tap'
import { pickPort, portAllowed } from '../../src/agents/port-policy.js'

const RANGES = [{ from: 2222, to: 2222 }, { from: 30000, to: 30100 }]

t.test('portAllowed: only integer ports inside a range, never reserved ones (SECURITY D4)', (t) => {
  const cases: Array<[number, boolean]> = [
    [2222, true], [30000, true], [30100, true], [30050, true],
    [2221, false], [2223, false], [29999, false], [30101, false],
    [0, false], [-1, false], [65536, false], [22, false], [30000.5, false], [Number.NaN, false],
  ]
  for (const [port, expected] of cases) t.equal(portAllowed(port, RANGES), expected, String(port))
  t.equal(portAllowed(30010, RANGES, new Set([30010])), false, 'reserved (a relay listener) is refused')
  t.equal(portAllowed(80, [{ from: 0, to: 65535 }]), true)
  t.equal(portAllowed(0, [{ from: 0, to: 65535 }]), false, 'port 0 is never a real port')
  t.equal(portAllowed(2222, []), false, 'no ranges, no ports')
  t.end()
})

t.test('pickPort starts at a random position and wraps through every allowed port once', (t) => {
  t.equal(pickPort(RANGES, () => false, () => 0), 2222)
  t.equal(pickPort(RANGES, () => false, () => 0.999999), 30100)
  t.equal(pickPort(RANGES, (p) => p === 30100, () => 0.999999), 2222, 'wraps to the start')
  let calls = 0
  t.equal(pickPort(RANGES, () => { calls++; return true }), null, 'all taken')
  t.equal(calls, 102, 'each allowed port checked exactly once')
  t.equal(pickPort([], () => false), null)
  t.end()
})

t.test('pickPort merges overlaps, clamps to 1-65535 and ignores empty ranges', (t) => {
  const seen = new Set<number>()
  const calls: number[] = []
  pickPort([{ from: 10, to: 12 }, { from: 11, to: 14 }, { from: 20, to: 19 }, { from: 65534, to: 70000 }, { from: -5, to: 1 }], (p) => {
    calls.push(p)
    seen.add(p)
    return true
  }, () => 0)
  t.same(calls, [1, 10, 11, 12, 13, 14, 65534, 65535])
  t.equal(seen.size, calls.length, 'no port checked twice')
  t.end()
})

t.test('pickPort spreads its choices (random start)', (t) => {
  const picks = new Set<number>()
  for (let i = 0; i < 200; i++) {
    const p = pickPort([{ from: 40000, to: 40999 }], () => false)
    if (p !== null) picks.add(p)
  }
  t.ok(picks.size > 100, `200 picks over 1000 ports gave ${picks.size} distinct ports`)
  t.end()
})
