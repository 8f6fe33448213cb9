import t from 'tap'
import { PassThrough } from 'node:stream'
import { MessageDecoder, encodeMessage, readHead } from '../../src/protocol/framing.js'
import { AgentMessage } from '../../src/protocol/messages.js'

t.test('a message split at every byte boundary decodes once', async (t) => {
  const bytes = Buffer.concat([encodeMessage({ a: 1 }), encodeMessage({ b: 'two' })])
  const dec = new MessageDecoder()
  const got: unknown[] = []
  for (const byte of bytes) got.push(...dec.push(Buffer.from([byte])))
  t.same(got, [{ a: 1 }, { b: 'two' }])
})

t.test('oversize length is refused before buffering the body', async (t) => {
  const dec = new MessageDecoder(16)
  t.throws(() => dec.push(Buffer.from('0000ffff', 'hex')), { code: 'PL_ERR_PROTO_FRAME_TOO_LARGE' })
})

t.test('prototype keys are dropped (SECURITY A13)', async (t) => {
  const json = Buffer.from('{"__proto__":{"isAdmin":true},"x":1}')
  const frame = Buffer.concat([Buffer.from([0, 0, 0, json.length]), json])
  const [m] = new MessageDecoder().push(frame) as Array<Record<string, unknown>>
  t.equal(m!['x'], 1)
  t.equal(Object.getPrototypeOf(m), Object.prototype)
  t.equal(({} as Record<string, unknown>)['isAdmin'], undefined)
  t.equal((m as Record<string, unknown>)['isAdmin'], undefined)
})

t.test('readHead returns the head and leaves body bytes in the stream, even in the same chunk', async (t) => {
  const stream = new PassThrough()
  // Body bytes look like a huge length prefix ("xxxx"): they must never be parsed as a frame.
  stream.write(Buffer.concat([encodeMessage({ t: 'ok' }), Buffer.from('xxxxxxxx')]))
  stream.end(Buffer.from('yy'))
  const head = await readHead(stream, 1000)
  t.same(head, { t: 'ok' })
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  t.equal(Buffer.concat(chunks).toString(), 'xxxxxxxxyy')
})

t.test('readHead rejects when the stream ends first or times out', async (t) => {
  const ended = new PassThrough()
  ended.end(Buffer.from([0, 0]))
  await t.rejects(readHead(ended, 1000), { code: 'PL_ERR_PROTO_BAD_FRAME' })
  const silent = new PassThrough()
  const started = Date.now()
  await t.rejects(readHead(silent, 100), { code: 'PL_ERR_PROTO_HEAD_TIMEOUT', message: /timed out after 100 ms/ })
  t.ok(Date.now() - started < 1000)
})

t.test('readHead rejects at once when the stream is destroyed without an error (a visitor who left)', async (t) => {
  const stream = new PassThrough()
  const started = Date.now()
  const pending = readHead(stream, 10_000)
  setTimeout(() => stream.destroy(), 20)
  await t.rejects(pending, { code: 'PL_ERR_PROTO_BAD_FRAME', message: /closed before its head/ })
  t.ok(Date.now() - started < 1000, `rejected after ${Date.now() - started} ms, not at the 10 s timeout`)
})

t.test('prototype keys hidden behind \\u escapes are dropped too; other escapes survive', async (t) => {
  const json = Buffer.from('{"\\u005f_proto__":{"isAdmin":true},"c\\u006fnstructor":1,"x":"caf\\u00e9","y":{"constructor":2}}')
  const frame = Buffer.concat([Buffer.from([0, 0, 0, json.length]), json])
  const [m] = new MessageDecoder().push(frame) as Array<Record<string, unknown>>
  t.same(Object.keys(m!), ['x', 'y'])
  t.equal(m!['x'], 'café')
  t.same(m!['y'], {})
  t.equal(Object.getPrototypeOf(m), Object.prototype)
})

t.test('encodeMessage: length prefix counts UTF-8 bytes; the limit applies to bytes, not characters', async (t) => {
  const value = { s: 'é€😀' }
  const frame = encodeMessage(value)
  const body = Buffer.from(JSON.stringify(value), 'utf8')
  t.equal(frame.readUInt32BE(0), body.length)
  t.equal(frame.length, 4 + body.length)
  t.same(new MessageDecoder().push(frame), [value])
  // 10 characters of 3 bytes each (+ quotes): over a 31-byte limit although only 12 characters long.
  t.throws(() => encodeMessage('€'.repeat(10), 31), { code: 'PL_ERR_PROTO_FRAME_TOO_LARGE' })
  t.equal(encodeMessage('€'.repeat(10), 32).length, 36)
})

t.test('hostile JSON within the size cap: deep nesting, big arrays and long strings are refused quickly (SECURITY A13)', async (t) => {
  const frame = (text: string): Buffer => {
    const json = Buffer.from(text)
    const head = Buffer.alloc(4)
    head.writeUInt32BE(json.length)
    return Buffer.concat([head, json])
  }
  const cases: Array<[string, string]> = [
    ['10k-deep nesting', `{"type":"publish","tunnels":${'['.repeat(10_000)}${']'.repeat(10_000)}}`],
    ['10k-element array', `{"type":"publish","tunnels":[${Array.from({ length: 10_000 }, () => '{}').join(',')}]}`],
    ['60 KB string', `{"type":"hello","version":1,"agent_version":"${'x'.repeat(60_000)}"}`],
    ['constructor.prototype', '{"type":"request","id":1,"op":"status","args":{"constructor":{"prototype":{"isAdmin":true}}}}'],
  ]
  for (const [name, text] of cases) {
    const started = performance.now()
    let verdict: string
    try {
      const [raw] = new MessageDecoder().push(frame(text))
      const parsed = AgentMessage.safeParse(raw)
      verdict = parsed.success ? `accepted ${JSON.stringify(parsed.data).slice(0, 80)}` : 'schema rejected'
    } catch (err) {
      verdict = (err as { code?: string }).code ?? 'threw'
    }
    const ms = performance.now() - started
    if (name === 'constructor.prototype') t.equal(verdict, 'accepted {"type":"request","id":1,"op":"status","args":{}}', `${name}: the key is dropped, the rest accepted`)
    else t.ok(verdict === 'schema rejected' || verdict === 'PL_ERR_PROTO_BAD_MESSAGE', `${name}: ${verdict}`)
    t.ok(ms < 50, `${name}: decided in ${ms.toFixed(1)} ms`)
  }
  t.equal(({} as Record<string, unknown>)['isAdmin'], undefined, 'no prototype was touched')
})
