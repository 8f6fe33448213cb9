import { PorchlightError } from '../errors.js'
import { HttpRequestHead, ReplyHead, StreamHead } from './messages.js'

/**
 * Cheap validation of the heads every HTTP request carries. Zod stays the authority: a
 * hand-written check accepts only what the schema accepts (same keys, types and size bounds as
 * HttpRequestHead / ReplyHead in protocol/messages.ts), and anything it does not recognise goes
 * to zod, which accepts or rejects it and names the problem. The fast check saves a zod walk over
 * every header pair of every request (about a tenth of the agent's per-request CPU), and the
 * relay checks every reply head the same way.
 * Keep the bounds below in step with messages.ts; test/protocol/head-checks.test.ts compares both.
 */
const NAME_MAX = 253
const METHOD_MAX = 32
const URL_MAX = 16 * 1024
const SHORT_TEXT_MAX = 1024
const HEADER_COUNT_MAX = 256
const HEADER_NAME_MAX = 256
const HEADER_VALUE_MAX = 16 * 1024

export type HeadCheck<T> = { ok: true; head: T } | { ok: false; issue: string }

/** A stream head from the relay: the fast path for plain http heads, zod for everything else. */
export function parseStreamHead(raw: unknown): HeadCheck<StreamHead> {
  if (isPlainHttpHead(raw)) return { ok: true, head: raw }
  const parsed = StreamHead.safeParse(raw)
  return parsed.success ? { ok: true, head: parsed.data } : { ok: false, issue: parsed.error.issues[0]?.message ?? 'invalid stream head' }
}

/** The agent's own `response` head, checked before it is sent (the relay would refuse it otherwise). */
export function isValidReplyHead(reply: ReplyHead): boolean {
  return isPlainResponseHead(reply) || ReplyHead.safeParse(reply).success
}

/**
 * A reply head from the agent (untrusted): the fast path for plain responses, zod for the rest.
 * Throws PL_ERR_PROTO_BAD_MESSAGE, never a ZodError: callers decide on `err.code`, like for every
 * other protocol error (the fuzz test in test/protocol/fuzz.test.ts holds it to that).
 */
export function parseReplyHead(raw: unknown): ReplyHead {
  if (isPlainResponseHead(raw)) return raw
  const parsed = ReplyHead.safeParse(raw)
  if (!parsed.success) throw new PorchlightError('PL_ERR_PROTO_BAD_MESSAGE', [parsed.error.issues[0]?.message ?? 'invalid reply head'], { cause: parsed.error })
  return parsed.data
}

const HTTP_HEAD_KEYS = new Set(['t', 'tunnel', 'host', 'method', 'url', 'headers', 'upgrade', 'has_body'])

/** True only for an object HttpRequestHead accepts as it is (a strict subset of what zod accepts). */
export function isPlainHttpHead(raw: unknown): raw is HttpRequestHead {
  if (!isPlainObject(raw)) return false
  const keys = ownKeyCount(raw, HTTP_HEAD_KEYS)
  if (keys === -1) return false
  const hasBody = raw['has_body']
  const bodyKeys = hasBody === undefined ? 0 : 1
  return keys === 7 + bodyKeys &&
    raw['t'] === 'http' &&
    isText(raw['tunnel'], 1, NAME_MAX) &&
    isText(raw['host'], 1, NAME_MAX) &&
    isText(raw['method'], 1, METHOD_MAX) &&
    isText(raw['url'], 1, URL_MAX) &&
    typeof raw['upgrade'] === 'boolean' &&
    (hasBody === undefined || typeof hasBody === 'boolean') &&
    isHeaderList(raw['headers'])
}

const RESPONSE_HEAD_KEYS = new Set(['t', 'status', 'status_message', 'headers'])

/** True only for a `response` ReplyHead zod accepts as it is. */
export function isPlainResponseHead(raw: unknown): raw is Extract<ReplyHead, { t: 'response' }> {
  if (!isPlainObject(raw)) return false
  const keys = ownKeyCount(raw, RESPONSE_HEAD_KEYS)
  if (keys === -1) return false
  const message = raw['status_message']
  const status = raw['status']
  return keys === (message === undefined ? 3 : 4) &&
    raw['t'] === 'response' &&
    typeof status === 'number' && Number.isInteger(status) && status >= 100 && status <= 999 &&
    (message === undefined || isText(message, 0, SHORT_TEXT_MAX)) &&
    isHeaderList(raw['headers'])
}

/** How many own keys the object has, all of them in `allowed`; -1 when one is not. */
function ownKeyCount(raw: Record<string, unknown>, allowed: ReadonlySet<string>): number {
  let keys = 0
  for (const key in raw) {
    if (!Object.hasOwn(raw, key) || !allowed.has(key)) return -1
    keys++
  }
  return keys
}

function isPlainObject(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && Object.getPrototypeOf(raw) === Object.prototype
}

function isText(value: unknown, min: number, max: number): boolean {
  return typeof value === 'string' && value.length >= min && value.length <= max
}

function isHeaderList(value: unknown): boolean {
  if (!Array.isArray(value) || value.length > HEADER_COUNT_MAX) return false
  for (const pair of value as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2) return false
    const [name, text] = pair as unknown[]
    if (!isText(name, 0, HEADER_NAME_MAX) || !isText(text, 0, HEADER_VALUE_MAX)) return false
  }
  return true
}
