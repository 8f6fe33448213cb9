import t from 'tap'
import type { Duplex } from 'node:stream'
import { pipeBoth, PrematureCloseError } from '../../src/net/pipe-both.js'
import { halfCloseExchange, hashUntilEnd, patternBytes, readAll, sha256, socketPair, streamPair, waitFor } from './helpers.js'

// 'end' is left out: duplexPair's own _final adds a permanent 'end' listener on the peer side.
const EVENTS = ['data', 'finish', 'drain', 'error', 'close', 'readable'] as const
function listenerCounts(s: Duplex): number[] {
  return EVENTS.map((e) => s.listenerCount(e))
}

t.test('half-close: the side that ended first still receives the full reply', async (t) => {
  const [client, relayEnd] = streamPair()
  const [agentEnd, origin] = streamPair()
  const before = [listenerCounts(relayEnd), listenerCounts(agentEnd)]
  const done: Array<Error | undefined> = []
  pipeBoth(relayEnd, agentEnd, (err) => done.push(err))

  const got = await halfCloseExchange(client, origin, 'QUIT\r\n', '221 bye\r\n')
  t.equal(got.secondGot, 'QUIT\r\n', 'origin sees the request and its FIN')
  t.equal(got.firstGot, '221 bye\r\n', 'reply written after the FIN arrives')
  await waitFor(() => done.length > 0, 2_000, 'onDone')
  t.same(done, [undefined], 'onDone once, without error')
  t.same([listenerCounts(relayEnd), listenerCounts(agentEnd)], before, 'every listener removed')
})

t.test('half-close over real TCP sockets (allowHalfOpen) both ways', async (t) => {
  const left = await socketPair()
  const right = await socketPair()
  t.teardown(left.close)
  t.teardown(right.close)
  let done: Error | undefined | null = null
  pipeBoth(left.server, right.client, (err) => { done = err })
  const serverGot = readAll(right.server)
  left.client.end('hello')
  t.equal(await serverGot, 'hello')
  const clientGot = readAll(left.client)
  right.server.write('still ')
  right.server.end('talking')
  t.equal(await clientGot, 'still talking')
  await waitFor(() => done !== null, 2_000, 'onDone')
  t.equal(done, undefined, 'finished cleanly')
})

t.test('an error on one side destroys both and reports the error once', async (t) => {
  const [client, relayEnd] = streamPair()
  const [agentEnd, origin] = streamPair()
  client.on('error', () => undefined)
  origin.on('error', () => undefined)
  const calls: Array<Error | undefined> = []
  pipeBoth(relayEnd, agentEnd, (err) => calls.push(err))
  const boom = new Error('boom')
  relayEnd.destroy(boom)
  await waitFor(() => agentEnd.destroyed && origin.destroyed, 1_000, 'other side torn down')
  t.equal(calls.length, 1)
  t.equal(calls[0], boom)
  t.equal(agentEnd.destroyed, true)
})

t.test('a side closing early without an error is a premature close', async (t) => {
  const [client, relayEnd] = streamPair()
  const [agentEnd, origin] = streamPair()
  client.on('error', () => undefined)
  origin.on('error', () => undefined)
  const calls: Array<Error | undefined> = []
  pipeBoth(relayEnd, agentEnd, (err) => calls.push(err))
  client.write('partial')
  agentEnd.destroy()
  await waitFor(() => calls.length > 0 && relayEnd.destroyed, 1_000, 'teardown')
  t.equal(calls.length, 1)
  t.ok(calls[0] instanceof PrematureCloseError)
  t.equal((calls[0] as PrematureCloseError).code, 'ERR_STREAM_PREMATURE_CLOSE')
  t.equal(relayEnd.destroyed, true)
})

t.test('a source that already ended before piping still ends the destination', async (t) => {
  const [client, relayEnd] = streamPair()
  const [agentEnd, origin] = streamPair()
  client.end()
  relayEnd.resume()
  await new Promise((resolve) => relayEnd.once('end', resolve))
  relayEnd.pause()
  t.equal(relayEnd.readableEnded, true)
  const originGot = readAll(origin)
  let done: Error | undefined | null = null
  pipeBoth(relayEnd, agentEnd, (err) => { done = err })
  t.equal(await originGot, '', 'origin gets an immediate FIN')
  const clientGot = readAll(client)
  origin.end('late reply')
  t.equal(await clientGot, 'late reply')
  await waitFor(() => done !== null, 1_000, 'onDone')
  t.equal(done, undefined)
})

t.test('backpressure: a paused reader bounds what is buffered, then 8 MB arrives intact', async (t) => {
  const left = await socketPair()
  const right = await socketPair()
  t.teardown(left.close)
  t.teardown(right.close)
  pipeBoth(left.server, right.client)
  const payload = patternBytes(8 * 1024 * 1024)
  right.server.pause()
  left.client.end(payload)
  // Give the pump time to fill every buffer it can while the reader is stopped.
  let maxBuffered = 0
  for (let i = 0; i < 40; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    maxBuffered = Math.max(maxBuffered, right.client.writableLength)
  }
  t.ok(maxBuffered < 1024 * 1024, `relay-side write buffer stayed under 1 MiB (max ${maxBuffered} bytes)`)
  t.equal(left.server.isPaused(), true, 'source paused while the destination is full')
  const got = hashUntilEnd(right.server)
  right.server.resume()
  const result = await got
  t.equal(result.bytes, payload.length)
  t.equal(result.sha256, sha256(payload))
})
