import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import type { Duplex } from 'node:stream'
import { PorchlightError } from '../../src/errors.js'
import { dialTcp, DialAbortedError } from '../../src/net/dial.js'
import { readAll, streamPair } from './helpers.js'

async function echoServer(t: Test): Promise<{ port: number; accepted: Socket[] }> {
  const accepted: Socket[] = []
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted.push(socket)
    socket.on('error', () => undefined)
    socket.pipe(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const s of accepted) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as AddressInfo).port, accepted }
}

async function deadPort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}

/**
 * A loopback port whose connects hang: a child process listens with a backlog of 1, then blocks
 * its event loop so it never accepts; once fillers occupy the accept queue the kernel drops
 * further SYNs, and a connect stays pending until the client gives up.
 */
async function hangingPort(t: Test): Promise<number> {
  const script = `
    const s = require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      process.stdout.write(s.address().port + '\\n')
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20000)
    })`
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  const [line] = (await once(child.stdout, 'data')) as [Buffer]
  const port = Number(line.toString().trim())
  const fillers: Socket[] = []
  t.teardown(() => {
    for (const f of fillers) f.destroy()
  })
  // Linux queues backlog + 1 completed connections; a few more leave no room at all.
  for (let i = 0; i < 4; i++) {
    const filler = connect({ host: '127.0.0.1', port })
    filler.on('error', () => undefined)
    fillers.push(filler)
  }
  await new Promise((resolve) => setTimeout(resolve, 50))
  return port
}

/** One end of a stream pair; destroying it resets the (ignored) other end. */
function abortableStream(): Duplex {
  const [end, peer] = streamPair()
  peer.on('error', () => undefined)
  return end
}

t.test('connects: resolves the socket, half-open capable, with no listeners of its own left', async (t) => {
  const svc = await echoServer(t)
  const abortOn = abortableStream()
  const closeListenersBefore = abortOn.listenerCount('close')
  const socket = await dialTcp({ host: '127.0.0.1', port: svc.port }, { timeoutMs: 2_000, abortOn })
  t.teardown(() => {
    socket.destroy()
  })
  t.equal(socket.remotePort, svc.port)
  t.equal(socket.allowHalfOpen, true)
  t.equal(socket.listenerCount('error'), 0, 'caller owns error handling from here')
  t.equal(socket.listenerCount('connect'), 0)
  t.equal(abortOn.listenerCount('close'), closeListenersBefore, 'abort listener removed')
  const echoed = readAll(socket)
  socket.end('ping')
  t.equal(await echoed, 'ping')
})

t.test('refused -> PL_ERR_DIAL_FAILED naming the target and the socket error', async (t) => {
  const port = await deadPort()
  const err = await dialTcp({ host: '127.0.0.1', port }, { timeoutMs: 2_000 }).then(() => null, (e: unknown) => e)
  t.ok(err instanceof PorchlightError)
  if (!(err instanceof PorchlightError)) return
  t.equal(err.code, 'PL_ERR_DIAL_FAILED')
  t.equal(err.message, `cannot connect to 127.0.0.1:${port}: ECONNREFUSED`)
  t.equal((err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED')
})

t.test('label replaces host:port in the message', async (t) => {
  const port = await deadPort()
  const err = await dialTcp({ host: '127.0.0.1', port }, { timeoutMs: 2_000, label: 'db.internal:5432' }).then(() => null, (e: unknown) => e)
  t.equal((err as PorchlightError).message, 'cannot connect to db.internal:5432: ECONNREFUSED')
})

t.test('a port out of range -> PL_ERR_DIAL_FAILED instead of a synchronous throw', async (t) => {
  const err = await dialTcp({ host: '127.0.0.1', port: 70_000 }, { timeoutMs: 2_000 }).then(() => null, (e: unknown) => e)
  t.equal((err as PorchlightError).code, 'PL_ERR_DIAL_FAILED')
  t.equal(((err as PorchlightError).cause as NodeJS.ErrnoException).code, 'ERR_SOCKET_BAD_PORT')
})

t.test('no answer within timeoutMs -> PL_ERR_DIAL_TIMEOUT', async (t) => {
  const port = await hangingPort(t)
  const started = Date.now()
  const err = await dialTcp({ host: '127.0.0.1', port }, { timeoutMs: 200 }).then(() => null, (e: unknown) => e)
  const elapsedMs = Date.now() - started
  t.equal((err as PorchlightError).code, 'PL_ERR_DIAL_TIMEOUT')
  t.equal((err as PorchlightError).message, `connecting to 127.0.0.1:${port} timed out`)
  t.ok(elapsedMs >= 150 && elapsedMs < 1_000, `gave up after ${elapsedMs} ms`)
})

t.test('abortOn closing first abandons the dial with DialAbortedError', async (t) => {
  const port = await hangingPort(t)
  const abortOn = abortableStream()
  const started = Date.now()
  const pending = dialTcp({ host: '127.0.0.1', port }, { timeoutMs: 5_000, abortOn }).then(() => null, (e: unknown) => e)
  setTimeout(() => abortOn.destroy(), 50)
  const err = await pending
  t.ok(err instanceof DialAbortedError, 'aborted, not timed out')
  t.equal((err as DialAbortedError).code, 'ERR_DIAL_ABORTED')
  t.ok(Date.now() - started < 1_000, 'settled at the abort, long before the timeout')
})

t.test('abortOn closing after the connect changes nothing', async (t) => {
  const svc = await echoServer(t)
  const abortOn = abortableStream()
  const socket = await dialTcp({ host: '127.0.0.1', port: svc.port }, { timeoutMs: 2_000, abortOn })
  t.teardown(() => {
    socket.destroy()
  })
  abortOn.destroy()
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(socket.destroyed, false)
})
