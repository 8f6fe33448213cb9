import t from 'tap'
import { hashPassword, PasswordCache } from '../../src/access/basic.js'
import { accessRulesProblems, decideAccess, type AccessInput, type AccessRules } from '../../src/access/decide.js'
import { LinkStore } from '../../src/access/links.js'
import { RateLimiter } from '../../src/access/rate-limit.js'

const T0 = 1_800_000_000_000
const HOUR_MS = 3600_000
const b64 = (s: string) => Buffer.from(s).toString('base64')
const passwordHash = await hashPassword('s3cret')
const GOOD_BASIC = `Basic ${b64('alice:s3cret')}`
const BAD_BASIC = `Basic ${b64('alice:guess')}`

function setup(limit = 3) {
  const links = new LinkStore({ stateDir: null, now: () => T0 })
  const basicLimiter = new RateLimiter({ limit, windowMs: 5 * 60_000, maxKeys: 100, now: () => T0 })
  return { links, basicLimiter, now: () => T0 }
}

function input(access: AccessRules | null, over: Partial<AccessInput> = {}): AccessInput {
  return { access, clientIp: '127.0.0.1', https: true, authorizationHeader: undefined, cookieHeader: undefined, url: '/', host: 'a.test', peerCertOk: false, ...over }
}

const ALL: AccessRules = { links: true, basic: { user: 'alice', password_hash: passwordHash }, allow_ips: [], client_certs: true }

t.test('no access rules: everyone is let in', async (t) => {
  const deps = setup()
  t.same(await decideAccess(input(null), deps), { action: 'allow', stripCookie: true })
  t.same(await decideAccess(input({ links: false, basic: null, allow_ips: [], client_certs: false }), deps), { action: 'allow', stripCookie: true })
})

t.test('allow_ips always restricts and nothing bypasses it (SECURITY C7, C9)', async (t) => {
  const deps = setup()
  const link = deps.links.create('a.test', HOUR_MS, '')
  const rules: AccessRules = { ...ALL, allow_ips: ['10.0.0.0/8'] }
  const outside = { clientIp: '127.0.0.1' }
  const denied = { action: 'deny', status: 403, code: 'PL_ERR_ACCESS_DENIED' }
  t.match(await decideAccess(input(rules, { ...outside, url: `/?porchlight_share=${link.token}` }), deps), denied, 'valid share token from outside')
  t.match(await decideAccess(input(rules, { ...outside, authorizationHeader: GOOD_BASIC }), deps), denied, 'valid basic from outside')
  t.match(await decideAccess(input(rules, { ...outside, peerCertOk: true }), deps), denied, 'valid client cert from outside')
  t.match(await decideAccess(input({ allow_ips: ['10.0.0.0/8'] }, { clientIp: '::ffff:10.9.9.9' }), deps), { action: 'allow' }, 'mapped inside address')
  t.match(await decideAccess(input({ allow_ips: ['not-a-cidr'] }, { clientIp: '10.9.9.9' }), deps), denied, 'invalid entries fail closed')
  t.match(await decideAccess(input(rules, { clientIp: '10.1.1.1' }), deps), { action: 'deny', status: 401 }, 'inside still needs a credential')
})

t.test('share token in the URL: redirect without it plus the cookie; then the cookie admits (SECURITY C3)', async (t) => {
  const deps = setup()
  const link = deps.links.create('a.test', HOUR_MS, '')
  const first = await decideAccess(input({ links: true }, { url: `/page?porchlight_share=${link.token}&x=1` }), deps)
  t.same(first, {
    action: 'redirect',
    location: '/page?x=1',
    setCookie: `__Host-porchlight_access=${link.token}; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax; Secure`,
  })
  const cookieHeader = `other=1; __Host-porchlight_access=${link.token}`
  t.same(await decideAccess(input({ links: true }, { cookieHeader }), deps), { action: 'allow', stripCookie: true })
  const http = await decideAccess(input({ links: true }, { https: false, url: `/?porchlight_share=${link.token}` }), deps)
  t.match(http, { action: 'redirect', location: '/', setCookie: /^porchlight_access=.*SameSite=Lax$/ })
  t.match(await decideAccess(input({ links: true }, { https: true, cookieHeader: `porchlight_access=${link.token}` }), deps), { action: 'deny', status: 401 }, 'HTTPS reads only the __Host- cookie')
})

t.test('invalid share tokens and cookies: 401 PL_ERR_ACCESS_LINK_INVALID (SECURITY C1, C2, C4)', async (t) => {
  const deps = setup()
  const good = deps.links.create('a.test', HOUR_MS, '')
  const revoked = deps.links.create('a.test', HOUR_MS, '')
  deps.links.revoke(revoked.id)
  const otherHost = deps.links.create('b.test', HOUR_MS, '')
  const tampered = `${good.token.slice(0, -1)}${good.token.endsWith('A') ? 'B' : 'A'}`
  const cases: Array<[string, string, string]> = [
    ['tampered', tampered, 'tampered'],
    ['revoked', revoked.token, 'revoked'],
    ['other host', otherHost.token, 'wrong_host'],
    ['malformed', 'x', 'malformed'],
  ]
  for (const [name, token, reason] of cases) {
    t.match(await decideAccess(input({ links: true }, { url: `/?porchlight_share=${token}` }), deps), { action: 'deny', status: 401, code: 'PL_ERR_ACCESS_LINK_INVALID', reason: `link_${reason}` }, `url: ${name}`)
    t.match(await decideAccess(input({ links: true }, { cookieHeader: `__Host-porchlight_access=${token}` }), deps), { action: 'deny', status: 401, code: 'PL_ERR_ACCESS_LINK_INVALID', reason: `cookie_${reason}` }, `cookie: ${name}`)
  }
  // An expired token must carry a valid MAC, so mint it in the past with the same secret.
  const secret = Buffer.alloc(32, 9)
  const past = new LinkStore({ stateDir: null, secret, now: () => T0 - 2 * HOUR_MS }).create('a.test', HOUR_MS, '')
  const verifier = new LinkStore({ stateDir: null, secret, now: () => T0 })
  t.match(await decideAccess(input({ links: true }, { cookieHeader: `__Host-porchlight_access=${past.token}` }), { ...deps, links: verifier }), { status: 401, reason: 'cookie_expired' })
  t.match(await decideAccess(input({ links: true }), deps), { action: 'deny', status: 401, code: 'PL_ERR_ACCESS_UNAUTHORIZED', reason: 'no_credentials' })
  t.notOk('wwwAuthenticate' in (await decideAccess(input({ links: true }), deps)), 'no Basic prompt when basic is off')
})

t.test('basic: right credentials admit; wrong ones get 401 + challenge; failures per IP+host hit 429 (SECURITY C5)', async (t) => {
  const deps = setup(3)
  const rules: AccessRules = { basic: { user: 'alice', password_hash: passwordHash } }
  t.same(await decideAccess(input(rules, { authorizationHeader: GOOD_BASIC }), deps), { action: 'allow', stripCookie: true })
  t.same(await decideAccess(input(rules), deps), { action: 'deny', status: 401, code: 'PL_ERR_ACCESS_UNAUTHORIZED', reason: 'no_credentials', wwwAuthenticate: 'Basic realm="porchlight"' })
  const wrong = { action: 'deny', status: 401, code: 'PL_ERR_ACCESS_UNAUTHORIZED', wwwAuthenticate: 'Basic realm="porchlight"' }
  for (let i = 0; i < 3; i++) t.match(await decideAccess(input(rules, { authorizationHeader: BAD_BASIC }), deps), wrong, `failure ${i + 1}`)
  t.same(await decideAccess(input(rules, { authorizationHeader: GOOD_BASIC }), deps), { action: 'deny', status: 429, code: 'PL_ERR_ACCESS_RATE_LIMITED', reason: 'basic_rate_limited', retryAfterS: 300 }, 'even the right password waits')
  t.same(await decideAccess(input(rules, { clientIp: '127.0.0.2', authorizationHeader: GOOD_BASIC }), deps), { action: 'allow', stripCookie: true }, 'another IP is not locked out')
  t.match(await decideAccess(input(rules, { host: 'b.test', authorizationHeader: BAD_BASIC }), deps), { status: 401 }, 'same IP, another site: own counter')
  const wrongUser = await decideAccess(input(rules, { clientIp: '10.0.0.1', authorizationHeader: `Basic ${b64('mallory:s3cret')}` }), deps)
  const wrongPassword = await decideAccess(input(rules, { clientIp: '10.0.0.2', authorizationHeader: BAD_BASIC }), deps)
  t.same(wrongUser, wrongPassword, 'wrong user and wrong password are indistinguishable')
  t.match(await decideAccess(input(rules, { clientIp: '10.0.0.3', authorizationHeader: 'Basic !!!' }), deps), { status: 401, reason: 'basic_malformed', wwwAuthenticate: 'Basic realm="porchlight"' })
})

t.test('client certificates admit on their own; a cert-only site answers 403 without one', async (t) => {
  const deps = setup()
  t.same(await decideAccess(input({ client_certs: true }, { peerCertOk: true }), deps), { action: 'allow', stripCookie: true })
  t.match(await decideAccess(input({ client_certs: true }), deps), { action: 'deny', status: 403, code: 'PL_ERR_ACCESS_DENIED', reason: 'client_cert_required' })
  t.match(await decideAccess(input({ client_certs: true, links: true }), deps), { action: 'deny', status: 401 })
})

t.test('any one configured method admits when several are set', async (t) => {
  const deps = setup()
  const link = deps.links.create('a.test', HOUR_MS, '')
  t.match(await decideAccess(input(ALL, { peerCertOk: true }), deps), { action: 'allow' })
  t.match(await decideAccess(input(ALL, { cookieHeader: `__Host-porchlight_access=${link.token}` }), deps), { action: 'allow' })
  t.match(await decideAccess(input(ALL, { authorizationHeader: GOOD_BASIC }), deps), { action: 'allow' })
  t.match(await decideAccess(input(ALL, { cookieHeader: '__Host-porchlight_access=bad', authorizationHeader: GOOD_BASIC }), deps), { action: 'allow' }, 'a stale cookie does not block Basic')
  t.match(await decideAccess(input(ALL, { cookieHeader: '__Host-porchlight_access=bad' }), deps), { status: 401, code: 'PL_ERR_ACCESS_LINK_INVALID', wwwAuthenticate: 'Basic realm="porchlight"' })
})

t.test('accessRulesProblems reports what the relay cannot enforce', (t) => {
  t.same(accessRulesProblems(ALL), [])
  t.same(accessRulesProblems({ allow_ips: ['10.0.0.0/8', 'nope'], basic: { user: 'a:b', password_hash: 'scrypt:1048576:8:1:AAAAAAAAAAA=:AAAAAAAAAAAAAAAAAAAAAA==' } }), [
    'allow_ips: "nope" is not an IP address or CIDR',
    'basic.user must be non-empty and contain no ":"',
    'basic.password_hash is not a supported scrypt hash (use `porchlight hash-password`)',
  ])
  t.end()
})

t.test('basic: 200 concurrent wrong guesses from one address are checked at most `limit` times (issue 16)', async (t) => {
  const limit = 10
  const deps = setup(limit)
  let checks = 0
  const passwordCache = new PasswordCache({
    maxQueued: 1000,
    verify: async () => {
      checks++
      await new Promise((resolve) => setTimeout(resolve, 5))
      return false
    },
  })
  const rules: AccessRules = { basic: { user: 'alice', password_hash: passwordHash } }
  const decisions = await Promise.all(Array.from({ length: 200 }, () => decideAccess(input(rules, { authorizationHeader: BAD_BASIC }), { ...deps, passwordCache })))
  t.equal(checks, limit, 'exactly the limit reached the password check')
  t.equal(decisions.filter((d) => d.action === 'deny' && d.status === 401).length, limit)
  t.equal(decisions.filter((d) => d.action === 'deny' && d.status === 429).length, 200 - limit)
})

t.test('basic: a check shed because the relay is busy is not counted as a failure', async (t) => {
  const deps = setup(2)
  const busy = new PasswordCache({ maxConcurrent: 1, maxQueued: 0, verify: () => new Promise((resolve) => setTimeout(() => resolve(false), 20)) })
  const rules: AccessRules = { basic: { user: 'alice', password_hash: passwordHash } }
  const [first, second] = await Promise.all([
    decideAccess(input(rules, { authorizationHeader: BAD_BASIC }), { ...deps, passwordCache: busy }),
    decideAccess(input(rules, { authorizationHeader: BAD_BASIC }), { ...deps, passwordCache: busy }),
  ])
  t.match(first, { status: 401 })
  t.match(second, { status: 429, reason: 'basic_busy' })
  t.match(await decideAccess(input(rules, { authorizationHeader: BAD_BASIC }), { ...deps, passwordCache: busy }), { status: 401 }, 'the shed attempt left a slot: the second real failure is checked')
  t.match(await decideAccess(input(rules, { authorizationHeader: BAD_BASIC }), { ...deps, passwordCache: busy }), { status: 429, reason: 'basic_rate_limited' })
})

t.test('client_certs: true admits any visitor certificate; a list only the named ones (issue 14)', async (t) => {
  const deps = setup()
  const denied = { action: 'deny', status: 403, code: 'PL_ERR_ACCESS_DENIED', reason: 'client_cert_required' }
  t.same(await decideAccess(input({ client_certs: true }, { peerCertOk: true, peerCertName: 'anyone' }), deps), { action: 'allow', stripCookie: true })
  const listed: AccessRules = { client_certs: ['alice-phone', 'bob-laptop'] }
  t.same(await decideAccess(input(listed, { peerCertOk: true, peerCertName: 'bob-laptop' }), deps), { action: 'allow', stripCookie: true })
  t.match(await decideAccess(input(listed, { peerCertOk: true, peerCertName: 'mallory' }), deps), denied, 'a name not in the list')
  t.match(await decideAccess(input(listed, { peerCertOk: true }), deps), denied, 'a certificate without a name')
  t.match(await decideAccess(input(listed, { peerCertOk: false, peerCertName: 'alice-phone' }), deps), denied, 'not verified (or not a visitor certificate)')
  t.same(await decideAccess(input({ client_certs: [] }), deps), { action: 'allow', stripCookie: true }, 'an empty list is no rule')
})
