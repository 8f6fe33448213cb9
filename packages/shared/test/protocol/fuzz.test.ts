// Property tests (fast-check) for the control-message parser (SECURITY.md A13): framed bytes go
// through MessageDecoder, then the AgentMessage / RelayMessage / StreamHead schemas and the head
// parsers, exactly as the relay and the agent read them. Nothing but the documented
// PorchlightError codes is ever thrown, and no value handed back holds an own `__proto__` or
// `constructor` key or a foreign prototype. Fixed seed in CI (FUZZ_SEED, FUZZ_RUNS_SCALE).
import t from 'tap'
import fc from 'fast-check'
import { PorchlightError } from '../../src/errors.js'
import { MessageDecoder } from '../../src/protocol/framing.js'
import { parseReplyHead, parseStreamHead } from '../../src/protocol/head-checks.js'
import { AgentMessage, RelayMessage, ReplyHead, StreamHead } from '../../src/protocol/messages.js'

const SEED = Number(process.env['FUZZ_SEED'] ?? 0x14f022)
const SCALE = Number(process.env['FUZZ_RUNS_SCALE'] ?? 1)
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE))
t.comment(`fast-check seed ${SEED} (FUZZ_SEED=${SEED} replays it; FUZZ_RUNS_SCALE=${SCALE})`)

function check(t: { pass(msg: string): void; fail(msg: string): void }, name: string, numRuns: number, property: fc.IProperty<any>): void {
  const started = Date.now()
  const out = fc.check(property as fc.IProperty<unknown>, { seed: SEED, numRuns })
  if (out.failed) t.fail(fc.defaultReportMessage(out) ?? `${name} failed`)
  else t.pass(`${name}: ${out.numRuns} cases in ${Date.now() - started} ms`)
}

// ---------------------------------------------------------------- JSON text with hostile keys

/** Keys that would pollute or shadow, spelled out and hidden behind \u escapes, plus the schemas' own keys. */
const HOSTILE_KEYS = ['"__proto__"', '"\\u005f_proto__"', '"__pr\\u006fto__"', '"\\u005F\\u005Fproto\\u005F\\u005F"', '"constructor"', '"\\u0063onstructor"', '"prototype"', '"isAdmin"', '"toString"']
const SCHEMA_KEYS = ['"type"', '"t"', '"id"', '"op"', '"args"', '"result"', '"ok"', '"tunnels"', '"headers"', '"kind"', '"host"', '"status"', '"code"', '"message"', '"access"', '"links"']
const keyArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_KEYS) },
  { weight: 2, arbitrary: fc.constantFrom(...SCHEMA_KEYS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }).map((s) => JSON.stringify(s)) },
)
const scalarArb = fc.oneof(
  fc.constantFrom('true', 'false', 'null', '0', '-1', '1e400', '200', '"http"', '"response"', '"request"', '"hello"', '"x"', '""'),
  fc.integer().map(String),
  fc.double().map((n) => JSON.stringify(n)),
  fc.string({ maxLength: 12 }).map((s) => JSON.stringify(s)),
)
const { value: jsonText } = fc.letrec<{ value: string; array: string; object: string }>((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, scalarArb, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }).map((xs) => `[${xs.join(',')}]`),
  object: fc.array(fc.tuple(keyArb, tie('value')), { maxLength: 5 }).map((kv) => `{${kv.map(([k, v]) => `${k}:${v}`).join(',')}}`),
}))
const objectText = fc.array(fc.tuple(keyArb, jsonText), { maxLength: 5 }).map((kv) => `{${kv.map(([k, v]) => `${k}:${v}`).join(',')}}`)
/** `,"key":value` pairs appended to a template (unknown keys must be refused, hostile ones dropped first). */
const extraArb = fc.array(fc.tuple(keyArb, jsonText), { maxLength: 2 }).map((kv) => kv.map(([k, v]) => `,${k}:${v}`).join(''))
const headersText = fc.oneof(fc.constant('[["a","b"]]'), fc.constant('[]'), jsonText)

/** Messages shaped like the real ones (so zod accepts some), with hostile keys in every open slot. */
const messageText = fc.oneof(
  { weight: 2, arbitrary: jsonText },
  { weight: 1, arbitrary: extraArb.map((x) => `{"type":"hello","version":1,"agent_version":"x"${x}}`) },
  { weight: 2, arbitrary: fc.tuple(objectText, extraArb).map(([a, x]) => `{"type":"request","id":1,"op":"share","args":${a}${x}}`) },
  { weight: 2, arbitrary: fc.tuple(jsonText, extraArb).map(([r, x]) => `{"type":"response","id":1,"ok":true,"result":${r}${x}}`) },
  { weight: 1, arbitrary: fc.tuple(objectText, extraArb).map(([a, x]) => `{"type":"publish","tunnels":[{"id":"a","kind":"http","host":"a.test","access":${a}}]${x}}`) },
  { weight: 1, arbitrary: extraArb.map((x) => `{"type":"notice","level":"warn","code":"c","message":"m"${x}}`) },
  { weight: 2, arbitrary: fc.tuple(headersText, extraArb).map(([h, x]) => `{"t":"response","status":200,"headers":${h}${x}}`) },
  { weight: 1, arbitrary: extraArb.map((x) => `{"t":"error","code":"PL_ERR_HTTP_ORIGIN_UNREACHABLE","message":"m"${x}}`) },
  { weight: 2, arbitrary: fc.tuple(headersText, extraArb).map(([h, x]) => `{"t":"http","tunnel":"a","host":"a.test","method":"GET","url":"/","headers":${h},"upgrade":false${x}}`) },
  { weight: 1, arbitrary: extraArb.map((x) => `{"t":"tcp","tunnel":"a","remote_address":"1.2.3.4","remote_port":1,"local_address":"::1","local_port":2${x}}`) },
)

/** One framed message: the right length prefix, or now and then a wrong one, a cut, a flipped byte. */
const framedArb = fc.tuple(messageText, fc.oneof(
  { weight: 8, arbitrary: fc.constant<'ok'>('ok') },
  { weight: 1, arbitrary: fc.constant<'long'>('long') },
  { weight: 1, arbitrary: fc.record({ flip: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
)).map(([text, how]) => {
  const body = Buffer.from(text, 'utf8')
  const head = Buffer.alloc(4)
  head.writeUInt32BE(how === 'long' ? 0x7fff_ffff : body.length)
  const framed = Buffer.concat([head, body])
  if (typeof how === 'object' && framed.length > 0) { const at = how.flip % framed.length; framed[at] = framed[at]! ^ (1 << how.bit) }
  return framed
})

// ---------------------------------------------------------------- the checks

const DECODER_CODES = new Set(['PL_ERR_PROTO_FRAME_TOO_LARGE', 'PL_ERR_PROTO_BAD_MESSAGE'])
const PROTO_NAMES = Object.getOwnPropertyNames(Object.prototype).length

/** Throws unless every object in `value` is plain (or an array) and has no own __proto__ / constructor key. */
function assertClean(value: unknown, where: string, depth = 0): void {
  if (typeof value !== 'object' || value === null) return
  if (depth > 200) throw new Error(`${where}: nested deeper than 200`)
  const proto = Object.getPrototypeOf(value) as unknown
  if (proto !== Object.prototype && proto !== Array.prototype) throw new Error(`${where}: foreign prototype`)
  for (const key of Reflect.ownKeys(value)) {
    if (key === '__proto__' || key === 'constructor') throw new Error(`${where}: own ${String(key)} key`)
    assertClean((value as Record<string | symbol, unknown>)[key], `${where}.${String(key)}`, depth + 1)
  }
}

function expectCode(err: unknown, codes: ReadonlySet<string>, where: string): void {
  if (!(err instanceof PorchlightError) || !codes.has(err.code)) {
    throw new Error(`${where} threw ${err instanceof Error ? `${err.constructor.name} ${(err as { code?: string }).code ?? ''}: ${err.message.slice(0, 200)}` : String(err)}`)
  }
}

const REPLY_CODES = new Set(['PL_ERR_PROTO_BAD_MESSAGE'])
const tally = { messages: 0, agentOk: 0, relayOk: 0, streamHeadOk: 0, replyOk: 0, decoderErrors: 0 }

/** What the relay and the agent do with one decoded value; every outcome must be clean. */
function judge(raw: unknown): void {
  tally.messages++
  assertClean(raw, 'decoded')
  const agent = AgentMessage.safeParse(raw)
  if (agent.success) { tally.agentOk++; assertClean(agent.data, 'AgentMessage') }
  const relay = RelayMessage.safeParse(raw)
  if (relay.success) { tally.relayOk++; assertClean(relay.data, 'RelayMessage') }
  const head = parseStreamHead(raw)
  if (head.ok !== StreamHead.safeParse(raw).success) throw new Error('parseStreamHead and StreamHead disagree')
  if (head.ok) { tally.streamHeadOk++; assertClean(head.head, 'StreamHead') }
  const zodReply = ReplyHead.safeParse(raw).success
  try {
    const reply = parseReplyHead(raw)
    if (!zodReply) throw new Error('parseReplyHead accepted what ReplyHead refuses')
    tally.replyOk++
    assertClean(reply, 'ReplyHead')
  } catch (err) {
    if (zodReply) throw err
    expectCode(err, REPLY_CODES, 'parseReplyHead')
  }
}

function decodeAll(pieces: Buffer[], maxBytes: number): void {
  const decoder = new MessageDecoder(maxBytes)
  for (const piece of pieces) {
    let messages: unknown[]
    try {
      messages = decoder.push(piece)
    } catch (err) {
      expectCode(err, DECODER_CODES, 'MessageDecoder.push')
      tally.decoderErrors++
      return // the control stream is closed on the first error
    }
    for (const m of messages) judge(m)
  }
}

function chunk(bytes: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = []
  for (let o = 0, i = 0; o < bytes.length; i++) {
    const n = cuts.length === 0 ? bytes.length : cuts[i % cuts.length]!
    out.push(bytes.subarray(o, o + n))
    o += n
  }
  return out
}
const cutsArb = fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 5 })
const maxBytesArb = fc.constantFrom(64 * 1024, 64 * 1024, 256)

t.test('framed messages with hostile keys: only documented codes thrown, nothing unclean handed back (SECURITY A13)', async (t) => {
  check(t, 'framed messages', runs(12_000), fc.property(fc.array(framedArb, { minLength: 1, maxLength: 4 }), cutsArb, maxBytesArb, (frames, cuts, maxBytes) => {
    decodeAll(chunk(Buffer.concat(frames), cuts), maxBytes)
  }))
  t.comment(`outcomes: ${JSON.stringify(tally)}`)
  t.ok(tally.agentOk > 0 && tally.relayOk > 0 && tally.streamHeadOk > 0 && tally.replyOk > 0 && tally.decoderErrors > 0, 'the runs reach every schema and the decoder errors')
  t.equal((({}) as Record<string, unknown>)['isAdmin'], undefined, 'Object.prototype was not polluted')
  t.equal(Object.getOwnPropertyNames(Object.prototype).length, PROTO_NAMES, 'Object.prototype gained no property')
})

t.test('arbitrary bytes: MessageDecoder throws only PL_ERR_PROTO_FRAME_TOO_LARGE / PL_ERR_PROTO_BAD_MESSAGE', async (t) => {
  check(t, 'arbitrary bytes', runs(15_000), fc.property(fc.uint8Array({ maxLength: 96 }), cutsArb, maxBytesArb, (bytes, cuts, maxBytes) => {
    // Half the runs get a plausible length prefix so the JSON parser sees the garbage too.
    const body = Buffer.from(bytes)
    const framed = bytes.length % 2 === 0 ? Buffer.concat([Buffer.from([0, 0, 0, body.length]), body]) : body
    decodeAll(chunk(framed, cuts), maxBytes)
  }))
})

t.test('already-parsed values (the head parsers fed directly): only PL_ERR_PROTO_BAD_MESSAGE, no foreign prototype kept', async (t) => {
  // Values as JSON.parse gives them without the decoder's reviver: own __proto__ keys included.
  // Zod must still never hand back an object whose prototype was swapped.
  check(t, 'direct values', runs(10_000), fc.property(messageText, (text) => {
    let raw: unknown
    try { raw = JSON.parse(text) } catch { return }
    for (const r of [AgentMessage.safeParse(raw), RelayMessage.safeParse(raw), StreamHead.safeParse(raw), ReplyHead.safeParse(raw)]) {
      if (r.success) {
        const walk = (v: unknown, d = 0): void => {
          if (typeof v !== 'object' || v === null || d > 200) return
          const proto = Object.getPrototypeOf(v) as unknown
          if (proto !== Object.prototype && proto !== Array.prototype && proto !== null) throw new Error('zod handed back a swapped prototype')
          for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k], d + 1)
        }
        walk(r.data)
      }
    }
    try { parseReplyHead(raw) } catch (err) { expectCode(err, REPLY_CODES, 'parseReplyHead') }
    parseStreamHead(raw)
  }))
  t.equal((({}) as Record<string, unknown>)['isAdmin'], undefined, 'Object.prototype was not polluted')
})
