import t from 'tap'
import { encodeHeader, FrameDecoder, type FrameSink } from '../../src/mux/codec.js'
import { Flag, FrameType, type FrameHeader } from '../../src/mux/frames.js'

type Event = string

/** Records decoder callbacks as short strings: "H type/flags/id/len", "P <hex>", "E id". */
function recorder(maxFrameBytes = 64): { dec: FrameDecoder; events: Event[] } {
  const events: Event[] = []
  const sink: FrameSink = {
    onHeader: (h: FrameHeader) => events.push(`H ${h.type}/${h.flags}/${h.streamId}/${h.length}`),
    onPayload: (_h, piece) => events.push(`P ${piece.toString('hex')}`),
    onDataEnd: (h) => events.push(`E ${h.streamId}`),
  }
  return { dec: new FrameDecoder({ maxFrameBytes, sink }), events }
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')

// DATA, flags SYN, stream 1, length 3, payload "abc"
const DATA_SYN_1 = '00 00 0001 00000001 00000003 616263'
// WINDOW_UPDATE, flags ACK, stream 2, delta 0x40000
const WU_ACK_2 = '00 01 0002 00000002 00040000'
// PING SYN opaque 7
const PING_7 = '00 02 0001 00000000 00000007'

t.test('encodeHeader writes the 12-byte big-endian layout', (t) => {
  t.equal(encodeHeader(FrameType.WindowUpdate, Flag.ACK | Flag.FIN, 0x01020304, 0xfffffffe).toString('hex'), '00010006' + '01020304' + 'fffffffe')
  t.equal(encodeHeader(FrameType.GoAway, 0, 0, 1).toString('hex'), '000300000000000000000001')
  t.end()
})

t.test('one whole DATA frame yields header, payload, end', (t) => {
  const { dec, events } = recorder()
  dec.push(hex(DATA_SYN_1))
  t.same(events, ['H 0/1/1/3', 'P 616263', 'E 1'])
  t.equal(dec.idle, true)
  t.end()
})

t.test('a header split across two chunks yields one frame', (t) => {
  const { dec, events } = recorder()
  dec.push(hex('00 01 00 02 00 00'))
  t.same(events, [])
  t.equal(dec.idle, false)
  dec.push(hex('00 02 00 04 00 00'))
  t.same(events, ['H 1/2/2/262144'])
  t.equal(dec.idle, true)
  t.end()
})

t.test('every byte pushed alone still decodes the same frames', (t) => {
  const { dec, events } = recorder()
  const all = hex(DATA_SYN_1 + WU_ACK_2 + PING_7)
  for (const byte of all) dec.push(Buffer.from([byte]))
  t.same(events, ['H 0/1/1/3', 'P 61', 'P 62', 'P 63', 'E 1', 'H 1/2/2/262144', 'H 2/1/0/7'])
  t.end()
})

t.test('coalesced frames in one chunk are all decoded, payload pieces are subarrays', (t) => {
  const { dec, events } = recorder()
  const chunk = hex(DATA_SYN_1 + WU_ACK_2 + PING_7 + DATA_SYN_1)
  dec.push(chunk)
  t.same(events, ['H 0/1/1/3', 'P 616263', 'E 1', 'H 1/2/2/262144', 'H 2/1/0/7', 'H 0/1/1/3', 'P 616263', 'E 1'])
  t.end()
})

t.test('a payload split across chunks is delivered in pieces, then ended once', (t) => {
  const { dec, events } = recorder()
  const whole = hex(DATA_SYN_1 + PING_7)
  dec.push(whole.subarray(0, 13))
  dec.push(whole.subarray(13, 14))
  dec.push(whole.subarray(14, 20))
  t.same(events, ['H 0/1/1/3', 'P 61', 'P 62', 'P 63', 'E 1'])
  dec.push(whole.subarray(20))
  t.same(events.at(-1), 'H 2/1/0/7')
  t.end()
})

t.test('a zero-length DATA frame with FIN ends at once', (t) => {
  const { dec, events } = recorder()
  dec.push(hex('00 00 0004 00000005 00000000'))
  t.same(events, ['H 0/4/5/0', 'E 5'])
  t.end()
})

t.test('thousands of coalesced frames do not recurse', (t) => {
  const { dec, events } = recorder()
  dec.push(Buffer.concat(Array.from({ length: 50_000 }, () => hex(PING_7))))
  t.equal(events.length, 50_000)
  t.end()
})

t.test('a DATA frame above maxFrameBytes is rejected on its header', (t) => {
  const { dec, events } = recorder(64)
  t.throws(() => dec.push(hex('00 00 0000 00000001 00000041')), { code: 'PL_ERR_PROTO_FRAME_TOO_LARGE', message: 'frame of 65 bytes exceeds the 64 byte limit' })
  t.same(events, [])
  t.equal(dec.stopped, true)
  // exactly the limit is fine
  const ok = recorder(64)
  ok.dec.push(Buffer.concat([hex('00 00 0000 00000001 00000040'), Buffer.alloc(64, 1)]))
  t.same(ok.events.at(-1), 'E 1')
  t.end()
})

t.test('a window update with a huge delta is not a frame-size violation', (t) => {
  const { dec, events } = recorder(64)
  dec.push(hex('00 01 0000 00000001 ffffffff'))
  t.same(events, ['H 1/0/1/4294967295'])
  t.end()
})

t.test('bad version and unknown type are protocol errors', (t) => {
  t.throws(() => recorder().dec.push(hex('01 00 0000 00000001 00000000')), { code: 'PL_ERR_PROTO_BAD_FRAME', message: 'protocol error: unsupported yamux version 1' })
  t.throws(() => recorder().dec.push(hex('00 04 0000 00000001 00000000')), { code: 'PL_ERR_PROTO_BAD_FRAME', message: 'protocol error: unknown yamux frame type 4' })
  t.end()
})

t.test('stop() from inside a callback drops the rest of the chunk', (t) => {
  const events: string[] = []
  const dec: FrameDecoder = new FrameDecoder({
    maxFrameBytes: 64,
    sink: {
      onHeader: (h) => {
        events.push(`H ${h.type}`)
        dec.stop()
      },
      onPayload: () => events.push('P'),
      onDataEnd: () => events.push('E'),
    },
  })
  dec.push(hex(DATA_SYN_1 + PING_7))
  dec.push(hex(PING_7))
  t.same(events, ['H 0'])
  t.end()
})
