import t from 'tap'
import { Activity, Ring, TrafficRings } from '../../src/admin/activity.js'
import { OTHER_LABEL } from '../../src/admin/label-fold.js'

const MIN = 60_000

t.test('a ring keeps the newest entries, newest first', t => {
  const ring = new Ring<number>(3)
  t.same(ring.newest(), [])
  for (let i = 1; i <= 7; i++) ring.push(i)
  t.equal(ring.size, 3)
  t.same(ring.newest(), [7, 6, 5])
  t.same(ring.newest(2), [7, 6])
  t.throws(() => new Ring(0), RangeError)
  t.end()
})

t.test('traffic per minute over a window; old minutes fall out', t => {
  const rings = new TrafficRings({ minutes: 5 })
  const t0 = 1000 * MIN
  rings.record('a.example', t0, 100, false)
  rings.record('a.example', t0 + 10_000, 50, true)
  rings.record('a.example', t0 + 2 * MIN, 1, false)
  let [a] = rings.series(t0 + 2 * MIN)
  t.same(a, { host: 'a.example', requests: [0, 0, 2, 0, 1], errors: [0, 0, 1, 0, 0], bytes: [0, 0, 150, 0, 1] })
  // Six minutes later the first minute's slot is reused (5-minute ring) and its counts are gone.
  rings.record('a.example', t0 + 5 * MIN, 7, false)
  ;[a] = rings.series(t0 + 5 * MIN)
  t.same(a!.requests, [0, 1, 0, 0, 1])
  t.same(rings.series(t0 + 20 * MIN), [], 'nothing in the window: the host is not listed')
  t.end()
})

t.test('hosts past the cap share "other"; an idle host gives its ring up', t => {
  const rings = new TrafficRings({ minutes: 5, maxHosts: 2 })
  const t0 = 1000 * MIN
  rings.record('a', t0, 1, false)
  rings.record('b', t0, 1, false)
  rings.record('c', t0, 1, false)
  rings.record('d', t0, 1, false)
  t.same(rings.series(t0).map((h) => [h.host, h.requests[4]]), [['a', 1], ['b', 1], [OTHER_LABEL, 2]])
  rings.record('b', t0 + 3 * MIN, 1, false)
  // 'a' has been silent for the whole window: 'e' takes its place.
  rings.record('e', t0 + 5 * MIN, 1, false)
  t.same(rings.series(t0 + 5 * MIN).map((h) => h.host).sort(), ['b', 'e'])
  t.ok(rings.hostCount <= 3)
  t.end()
})

t.test('memory stays bounded after 100,000 requests on 10,000 hosts', t => {
  const activity = new Activity({ accessLogEntries: 100, maxHosts: 50 })
  for (let i = 0; i < 100_000; i++) {
    activity.request({ time: i * 100, agent: 'a', host: `h${i % 10_000}`, method: 'GET', url: '/', status: 200, bytesIn: 0, bytesOut: 10, ms: 1 })
  }
  t.equal(activity.accessLog.size, 100)
  t.ok(activity.traffic.hostCount <= 51, `${activity.traffic.hostCount} rings`)
  t.end()
})
