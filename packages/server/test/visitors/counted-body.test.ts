import t from 'tap'
import { CountedBody, countedBodyLength } from '../../src/visitors/counted-body.js'

t.test('countedBodyLength: one plain Content-Length on a status with a body', async (t) => {
  t.equal(countedBodyLength(200, ['Content-Length', '10']), 10)
  t.equal(countedBodyLength(404, ['x-a', '1', 'content-length', '007']), 7)
  t.equal(countedBodyLength(200, ['Content-Length', '0']), null, 'empty: llhttp ends it at the head')
  t.equal(countedBodyLength(204, ['Content-Length', '5']), null)
  t.equal(countedBodyLength(304, ['Content-Length', '5']), null)
  t.equal(countedBodyLength(200, []), null, 'read to the close')
  t.equal(countedBodyLength(200, ['Transfer-Encoding', 'chunked']), null)
  t.equal(countedBodyLength(200, ['Content-Length', '5', 'Transfer-Encoding', 'chunked']), null)
  t.equal(countedBodyLength(200, ['Content-Length', '5', 'content-length', '5']), null)
  t.equal(countedBodyLength(200, ['Content-Length', '1234567890123456']), null, 'past exact Numbers: llhttp counts it')
  t.equal(countedBodyLength(200, ['Content-Length', '5 ']), null)
})

t.test('CountedBody takes its bytes off the front and no more', async (t) => {
  const body = new CountedBody(5)
  const chunk = Buffer.from('abc')
  t.equal(body.take(chunk), chunk)
  t.equal(body.done, false)
  t.equal(body.take(Buffer.from('defgh')).toString(), 'de')
  t.equal(body.done, true)
  t.equal(body.take(Buffer.from('x')).length, 0)
})
