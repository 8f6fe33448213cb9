import t from 'tap'
import { StallWatch } from '../../src/visitors/stall-watch.js'

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

t.test('fires once the socket stayed blocked for the limit', async t => {
  const fired: number[] = []
  const watch = new StallWatch(60, ms => fired.push(ms))
  watch.blocked()
  await sleep(30)
  t.same(fired, [], 'not before the limit')
  await sleep(80)
  t.equal(fired.length, 1)
  t.ok(fired[0]! >= 60 && fired[0]! < 200, `blocked ${fired[0]} ms`)
  watch.blocked()
  await sleep(100)
  t.equal(fired.length, 1, 'stopped after firing')
})

t.test('a drain resets the clock; only the current blocked period counts', async t => {
  const fired: number[] = []
  const watch = new StallWatch(80, ms => fired.push(ms))
  watch.blocked()
  await sleep(50)
  watch.drained()
  await sleep(10)
  watch.blocked()
  await sleep(50)
  t.same(fired, [], '50 + 50 ms in two periods is no stall')
  await sleep(70)
  t.equal(fired.length, 1, 'the second period reached the limit')
  t.ok(fired[0]! >= 80 && fired[0]! < 200, `second period blocked ${fired[0]} ms`)
})

t.test('drained or stopped: never fires', async t => {
  const fired: number[] = []
  const drained = new StallWatch(40, ms => fired.push(ms))
  drained.blocked()
  drained.drained()
  const stopped = new StallWatch(40, ms => fired.push(ms))
  stopped.blocked()
  stopped.stop()
  await sleep(100)
  t.same(fired, [])
})
