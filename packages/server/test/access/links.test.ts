import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import {
  buildAccessCookie, cookieName, LinkStore, readAccessCookie, readAccessCookies, stripRelayCookies, stripShareParam,
} from '../../src/access/links.js'

const HOUR_MS = 3600_000
const T0 = 1_800_000_000_000

function memoryStore(now = () => T0) {
  return new LinkStore({ stateDir: null, now })
}

/** Flips one bit of the character at `index` within the base64url alphabet. */
function flip(token: string, index: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const i = alphabet.indexOf(token[index] ?? 'A')
  return token.slice(0, index) + alphabet[(i ^ 1) % 64] + token.slice(index + 1)
}

t.test('a fresh link verifies for its host until it expires', (t) => {
  const store = memoryStore()
  const link = store.create('a.test', HOUR_MS, 'for bob')
  t.match(link, { id: /^[0-9a-f]{16}$/, token: /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/, expiresAt: T0 + HOUR_MS })
  t.same(store.verify(link.token, 'a.test', T0 + 1), { ok: true, id: link.id, exp: T0 + HOUR_MS })
  t.same(store.verify(link.token, 'A.TEST.', T0 + 1), { ok: true, id: link.id, exp: T0 + HOUR_MS }, 'host compared normalised')
  t.same(store.verify(link.token, 'a.test', T0 + HOUR_MS - 1).ok, true)
  t.same(store.verify(link.token, 'a.test', T0 + HOUR_MS), { ok: false, reason: 'expired' })
  t.end()
})

t.test('forged, moved, revoked and malformed tokens are refused with a reason (SECURITY C1, C2)', (t) => {
  const store = memoryStore()
  const link = store.create('a.test', HOUR_MS, '')
  const [payload, mac] = link.token.split('.') as [string, string]
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>
  const forgedPayload = (c: Record<string, unknown>) => `${Buffer.from(JSON.stringify(c)).toString('base64url')}.${mac}`
  const otherSecret = new LinkStore({ stateDir: null, now: () => T0 }).create('a.test', HOUR_MS, '').token
  const cases: Array<[string, string, string, string]> = [
    ['bit flipped in the MAC', flip(link.token, link.token.length - 2), 'a.test', 'tampered'],
    ['bit flipped in the payload', flip(link.token, 3), 'a.test', 'tampered'],
    ['host changed in the payload', forgedPayload({ ...claims, h: 'b.test' }), 'b.test', 'tampered'],
    ['expiry extended in the payload', forgedPayload({ ...claims, e: T0 + 1000 * HOUR_MS }), 'a.test', 'tampered'],
    ['signed with another secret (rotated key)', otherSecret, 'a.test', 'tampered'],
    ['token for a.test used on b.test', link.token, 'b.test', 'wrong_host'],
    ['empty', '', 'a.test', 'malformed'],
    ['no dot', 'abc', 'a.test', 'malformed'],
    ['short MAC', `${payload}.${mac.slice(1)}`, 'a.test', 'malformed'],
    ['JWT alg none', 'eyJhbGciOiJub25lIn0.eyJoIjoiYS50ZXN0In0.', 'a.test', 'malformed'],
    ['huge', `${'A'.repeat(5000)}.${mac}`, 'a.test', 'malformed'],
    ['non-base64url', `${payload}!.${mac}`, 'a.test', 'malformed'],
  ]
  for (const [name, token, host, reason] of cases) t.same(store.verify(token, host, T0 + 1), { ok: false, reason }, name)
  t.end()
})

t.test('revocation takes effect on the next verify; other links are unaffected', (t) => {
  const store = memoryStore()
  const a = store.create('a.test', HOUR_MS, 'one')
  const b = store.create('a.test', HOUR_MS, 'two')
  t.equal(store.revoke(a.id), true)
  t.same(store.verify(a.token, 'a.test', T0 + 1), { ok: false, reason: 'revoked' })
  t.equal(store.verify(b.token, 'a.test', T0 + 1).ok, true)
  t.equal(store.revoke('no-such-id'), false)
  t.same(store.list('a.test').map((l) => [l.note, l.revoked]), [['one', true], ['two', false]])
  t.end()
})

t.test('lifetimes outside the policy are refused at create and at verify', (t) => {
  const now = T0
  const strict = new LinkStore({ stateDir: null, maxTtlMs: 2 * HOUR_MS, now: () => now })
  t.throws(() => strict.create('a.test', 3 * HOUR_MS, ''), { code: 'PL_ERR_PROTO_BAD_MESSAGE' })
  t.throws(() => strict.create('a.test', 0, ''), { code: 'PL_ERR_PROTO_BAD_MESSAGE' })
  t.throws(() => strict.create('a.test', Number.NaN, ''), { code: 'PL_ERR_PROTO_BAD_MESSAGE' })
  const secret = Buffer.alloc(32, 7)
  const lax = new LinkStore({ stateDir: null, secret, maxTtlMs: 100 * HOUR_MS, now: () => now })
  const long = lax.create('a.test', 50 * HOUR_MS, '')
  const tightened = new LinkStore({ stateDir: null, secret, maxTtlMs: 2 * HOUR_MS, now: () => now })
  t.same(tightened.verify(long.token, 'a.test', now), { ok: false, reason: 'expired' }, 'exp beyond the max TTL policy')
  t.equal(lax.verify(long.token, 'a.test', now).ok, true, 'while the old policy accepts it')
  t.end()
})

t.test('with a state dir, the secret, links and revocations survive a restart', async (t) => {
  const dir = join(t.testdir(), 'state')
  const first = new LinkStore({ stateDir: dir, now: () => T0 })
  const kept = first.create('a.test', HOUR_MS, 'kept')
  const gone = first.create('a.test', HOUR_MS, 'revoked')
  first.revoke(gone.id)
  t.equal((await stat(join(dir, 'link-secret'))).mode & 0o777, 0o600)
  t.equal((await stat(join(dir, 'links.json'))).mode & 0o777, 0o600)
  t.notMatch(await readFile(join(dir, 'links.json'), 'utf8'), kept.token.split('.')[1]!, 'tokens are not stored')

  const second = new LinkStore({ stateDir: dir, now: () => T0 })
  t.equal(second.verify(kept.token, 'a.test', T0 + 1).ok, true)
  t.same(second.verify(gone.token, 'a.test', T0 + 1), { ok: false, reason: 'revoked' })
  t.same(second.list().map((l) => l.note), ['kept', 'revoked'])
})

t.test('an unreadable links.json fails closed instead of forgetting revocations', async (t) => {
  const dir = t.testdir()
  await writeFile(join(dir, 'links.json'), '{"version":1,"links":[{"id":1}]}')
  t.throws(() => new LinkStore({ stateDir: dir }), { code: 'PL_ERR_STATE_FILE' })
  await writeFile(join(dir, 'links.json'), 'nope')
  t.throws(() => new LinkStore({ stateDir: dir }), { code: 'PL_ERR_STATE_FILE' })
  const short = t.testdir()
  await writeFile(join(short, 'link-secret'), Buffer.alloc(8).toString('base64'))
  t.throws(() => new LinkStore({ stateDir: short }), { code: 'PL_ERR_STATE_FILE' })
})

t.test('expired links are pruned a day after expiry; the store is bounded', (t) => {
  let now = T0
  const store = new LinkStore({ stateDir: null, maxLinks: 3, now: () => now })
  const old = store.create('a.test', HOUR_MS, 'old')
  store.revoke(old.id)
  store.create('a.test', 48 * HOUR_MS, 'b')
  store.create('a.test', 48 * HOUR_MS, 'c')
  t.throws(() => store.create('a.test', HOUR_MS, 'd'), { code: 'PL_ERR_PROTO_BAD_MESSAGE' })
  now += 26 * HOUR_MS
  store.create('a.test', HOUR_MS, 'd')
  t.same(store.list().map((l) => l.note), ['b', 'c', 'd'])
  t.same(store.verify(old.token, 'a.test', now), { ok: false, reason: 'expired' }, 'a pruned revoked link is still refused')
  t.end()
})

t.test('cookies: names, attributes, reading, stripping (SECURITY C3, C4)', (t) => {
  t.equal(cookieName(true), '__Host-porchlight_access')
  t.equal(cookieName(false), 'porchlight_access')
  t.equal(buildAccessCookie('tok.en', T0 + HOUR_MS, true, T0), '__Host-porchlight_access=tok.en; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax; Secure')
  t.equal(buildAccessCookie('tok.en', T0 + 1500, false, T0), 'porchlight_access=tok.en; Path=/; Max-Age=1; HttpOnly; SameSite=Lax')
  t.notMatch(buildAccessCookie('x', T0 + 1, true, T0), /Domain/i)

  const header = 'a=1; porchlight_access=plain; __Host-porchlight_access=secure; b=2; __Host-porchlight_access=second'
  t.equal(readAccessCookie(header, true), 'secure')
  t.same(readAccessCookies(header, true), ['secure', 'second'])
  t.equal(readAccessCookie(header, false), 'plain')
  t.equal(readAccessCookie('xporchlight_access=no; porchlight_accessx=no', false), null)
  t.equal(readAccessCookie(undefined, true), null)
  t.equal(readAccessCookies(Array.from({ length: 100 }, () => '__Host-porchlight_access=v').join('; '), true).length, 4)

  t.equal(stripRelayCookies(header), 'a=1; b=2')
  t.equal(stripRelayCookies('porchlight_access=x; __host-porchlight_access=y'), null)
  t.equal(stripRelayCookies('session=abc'), 'session=abc')
  t.equal(stripRelayCookies(''), null)
  t.equal(stripRelayCookies(undefined), null)
  t.end()
})

t.test('stripShareParam removes every porchlight_share and keeps the rest byte for byte', (t) => {
  const cases: Array<[string, string, string | null]> = [
    ['/page?porchlight_share=T1&x=1', '/page?x=1', 'T1'],
    ['/page?x=1&porchlight_share=T1', '/page?x=1', 'T1'],
    ['/page?porchlight_share=T1', '/page', 'T1'],
    ['/p?a=%20b&porchlight_share=T1&c=d+e', '/p?a=%20b&c=d+e', 'T1'],
    ['/p?porchlight_share=T1&porchlight_share=T2', '/p', 'T1'],
    ['/p?porchlight%5Fshare=T3', '/p', 'T3'],
    ['/p?porchlight_share', '/p', null],
    ['/p?x=1', '/p?x=1', null],
    ['/p', '/p', null],
    ['//evil.example/?porchlight_share=T1', '/evil.example/', 'T1'],
    ['/\\evil.example/?porchlight_share=T1', '/evil.example/', 'T1'],
    ['/p?porchlight_share=%E0%A4%A', '/p', '%E0%A4%A'],
  ]
  for (const [url, stripped, token] of cases) t.same(stripShareParam(url), { url: stripped, token }, url)
  t.end()
})
