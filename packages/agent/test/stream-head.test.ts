import { PassThrough } from 'node:stream'
import t from 'tap'
import { encodeMessage } from '@porchlight/shared/protocol'
import { readStreamHead } from '../src/stream-head.js'

function collect(stream: PassThrough): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => resolve(Buffer.concat(chunks)))
  })
}

t.test('head and body in ONE chunk: the body comes back untouched, never parsed as messages', async (t) => {
  // "hello" would be read as a 1.7 GB length prefix by a decoder that keeps going after the head.
  const head = { t: 'response', status: 200, headers: [] }
  const bytes = Buffer.concat([encodeMessage(head), Buffer.from('hello world')])
  const stream = new PassThrough()
  stream.end(bytes)
  t.same(await readStreamHead(stream, 1_000), head)
  t.equal((await collect(stream)).toString(), 'hello world')
})

t.test('split at every byte boundary: same head, same body', async (t) => {
  const head = { t: 'http', tunnel: 'blog', url: '/ü' }
  const bytes = Buffer.concat([encodeMessage(head), Buffer.from([0xff, 0x00, 0x10, 0x20, 0x30])])
  for (let cut = 0; cut <= bytes.length; cut++) {
    const stream = new PassThrough()
    stream.write(bytes.subarray(0, cut))
    setImmediate(() => stream.end(bytes.subarray(cut)))
    t.same(await readStreamHead(stream, 1_000), head, `cut at ${cut}`)
    t.same([...(await collect(stream))], [0xff, 0x00, 0x10, 0x20, 0x30], `body after cut at ${cut}`)
  }
})

t.test('oversized length, bad JSON, early end and timeout are rejected with codes', async (t) => {
  const huge = new PassThrough()
  const prefix = Buffer.alloc(4)
  prefix.writeUInt32BE(70_000, 0)
  huge.write(prefix)
  await t.rejects(readStreamHead(huge, 1_000), { code: 'PL_ERR_PROTO_FRAME_TOO_LARGE' })

  const junk = new PassThrough()
  const body = Buffer.from('{nope')
  const len = Buffer.alloc(4)
  len.writeUInt32BE(body.length, 0)
  junk.end(Buffer.concat([len, body]))
  await t.rejects(readStreamHead(junk, 1_000), { code: 'PL_ERR_PROTO_BAD_MESSAGE' })

  const early = new PassThrough()
  early.end(Buffer.from([0, 0]))
  await t.rejects(readStreamHead(early, 1_000), { code: 'PL_ERR_PROTO_BAD_FRAME', message: /ended before its head/ })

  const silent = new PassThrough()
  const started = Date.now()
  await t.rejects(readStreamHead(silent, 100), { code: 'PL_ERR_PROTO_BAD_FRAME', message: /timed out/ })
  t.ok(Date.now() - started < 1_000)
})

t.test('prototype-polluting keys are dropped', async (t) => {
  const stream = new PassThrough()
  const json = Buffer.from('{"t":"ok","__proto__":{"polluted":true}}')
  const len = Buffer.alloc(4)
  len.writeUInt32BE(json.length, 0)
  stream.end(Buffer.concat([len, json]))
  const value = (await readStreamHead(stream, 1_000)) as Record<string, unknown>
  t.same(value, { t: 'ok' })
  t.equal(({} as Record<string, unknown>)['polluted'], undefined)
})
