import t, { type Test } from 'tap'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { readHead, writeHead } from '../../src/protocol/framing.js'
import { bridgeSocketToStream, type BridgeOptions } from '../../src/net/bridge.js'
import { halfCloseExchange, readAll, socketPair, streamPair, waitFor } from './helpers.js'

const HEAD = { t: 'forward', host: 'db.internal', port: 5432 }

interface Calls {
  refused: Array<[string, string | undefined]>
  noReply: unknown[]
  done: Array<Error | undefined>
}

/** A local socket (server side of a loopback pair) bridged to one end of a stream pair. */
async function setup(t: Test, replyTimeoutMs = 2_000): Promise<{ client: Socket; local: Socket; relayEnd: Duplex; farEnd: Duplex; calls: Calls }> {
  const pair = await socketPair()
  t.teardown(pair.close)
  const [relayEnd, farEnd] = streamPair()
  relayEnd.on('error', () => undefined)
  farEnd.on('error', () => undefined)
  pair.client.on('error', () => undefined)
  const calls: Calls = { refused: [], noReply: [], done: [] }
  const opts: BridgeOptions = {
    replyTimeoutMs,
    onRefused: (code, message) => calls.refused.push([code, message]),
    onNoReply: (err) => calls.noReply.push(err),
    onDone: (err) => calls.done.push(err),
  }
  bridgeSocketToStream(pair.server, relayEnd, HEAD, opts)
  return { client: pair.client, local: pair.server, relayEnd, farEnd, calls }
}

t.test('ok reply: the head goes first, then bytes flow both ways with half-close', async (t) => {
  const { client, farEnd, calls } = await setup(t)
  t.same(await readHead(farEnd, 2_000), HEAD, 'far end reads the head')
  writeHead(farEnd, { t: 'ok' })
  const got = await halfCloseExchange(client, farEnd, 'request', 'reply')
  t.equal(got.secondGot, 'request', 'client bytes and FIN reach the far end')
  t.equal(got.firstGot, 'reply', 'reply still flows after the client half-closed')
  await waitFor(() => calls.done.length > 0, 2_000, 'onDone')
  t.same(calls, { refused: [], noReply: [], done: [undefined] })
})

t.test('bytes after the ok reply in the same chunk are not lost', async (t) => {
  const { client, farEnd } = await setup(t)
  await readHead(farEnd, 2_000)
  const clientGot = readAll(client)
  writeHead(farEnd, { t: 'ok' })
  farEnd.end('early bytes')
  client.end()
  t.equal(await clientGot, 'early bytes')
})

t.test('error reply: onRefused with its code and message, both sides destroyed', async (t) => {
  const { client, local, relayEnd, farEnd, calls } = await setup(t)
  await readHead(farEnd, 2_000)
  writeHead(farEnd, { t: 'error', code: 'PL_ERR_DIAL_FAILED', message: 'cannot connect to db.internal:5432: ECONNREFUSED' })
  await waitFor(() => local.destroyed && relayEnd.destroyed, 2_000, 'both destroyed')
  t.same(calls, { refused: [['PL_ERR_DIAL_FAILED', 'cannot connect to db.internal:5432: ECONNREFUSED']], noReply: [], done: [] })
  await waitFor(() => client.destroyed || client.readableEnded, 2_000, 'client sees the close')
})

t.test('a reply that is not a valid ReplyHead: PL_ERR_PROTO_BAD_MESSAGE without a message', async (t) => {
  const { local, relayEnd, farEnd, calls } = await setup(t)
  await readHead(farEnd, 2_000)
  writeHead(farEnd, { t: 'weird' })
  await waitFor(() => local.destroyed && relayEnd.destroyed, 2_000, 'both destroyed')
  t.same(calls, { refused: [['PL_ERR_PROTO_BAD_MESSAGE', undefined]], noReply: [], done: [] })
})

t.test('no reply within replyTimeoutMs: onNoReply with the readHead error, both sides destroyed', async (t) => {
  const { local, relayEnd, farEnd, calls } = await setup(t, 100)
  await readHead(farEnd, 2_000)
  await waitFor(() => calls.noReply.length > 0, 2_000, 'onNoReply')
  t.equal((calls.noReply[0] as { code?: string }).code, 'PL_ERR_PROTO_HEAD_TIMEOUT')
  t.match((calls.noReply[0] as Error).message, /stream head timed out/)
  t.ok(local.destroyed && relayEnd.destroyed, 'both destroyed')
  t.same([calls.refused, calls.done], [[], []])
})

t.test('far end closing before it answers: onNoReply, both sides destroyed', async (t) => {
  const { local, farEnd, calls } = await setup(t)
  await readHead(farEnd, 2_000)
  farEnd.end()
  await waitFor(() => calls.noReply.length > 0, 2_000, 'onNoReply')
  t.match((calls.noReply[0] as Error).message, /stream ended before its head/)
  await waitFor(() => local.destroyed, 2_000, 'local socket destroyed')
})

t.test('the local socket closing before the reply resets the stream (the far end stops dialling)', async (t) => {
  const { client, relayEnd, farEnd, calls } = await setup(t, 300)
  await readHead(farEnd, 2_000)
  client.destroy()
  await waitFor(() => relayEnd.destroyed, 2_000, 'stream reset')
  t.ok(farEnd.destroyed, 'the reset reached the far end')
  t.same([calls.refused, calls.done], [[], []], 'no refusal, no pipe')
  await waitFor(() => calls.noReply.length > 0, 2_000, 'onNoReply')
  t.equal(calls.noReply.length, 1, 'the abandoned read is reported once')
})
