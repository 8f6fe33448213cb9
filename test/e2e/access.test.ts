// Who may visit a published site (issue 3): share links with a real cookie jar (curl), basic auth
// and its per-address rate limit, IP allow-lists from a second loopback address (127.0.0.2),
// visitor client certificates, and the same gate on WebSocket upgrades, HEAD and OPTIONS.
import { execFile } from 'node:child_process'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { Agent } from 'node:http'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { startHttpOrigin, type OriginRequest } from './harness/origins.js'
import { foreignCert, initPki, issueCert, issueSiteCert, revokeCert } from './harness/pki.js'
import { freePort, splitHostPort } from './harness/ports.js'
import { RelayProcess, runCli, startAgent } from './harness/processes.js'
import { curlPage, jarCookies, visit, type CurlPage, type CurlPageOptions, type VisitResult } from './harness/visitor.js'
import { pollUntil } from './harness/wait.js'
import { childDir } from './harness/workdir.js'

const PASSWORD = 'correct horse battery'
const OTHER_IP = '127.0.0.2'
const LINK_INVALID_TEXT = 'this link is invalid or has expired'

// ---------------------------------------------------------------- one relay, one agent, every kind of site

const SITES = ['open', 'share', 'other', 'team', 'limited', 'office', 'vpn', 'photos', 'family', 'named']
const pki = await initPki(t)
// server.crt from `ca init` names only localhost; visitors' HTTPS needs the sites' names.
const siteCert = await issueSiteCert(pki, SITES.map(s => `${s}.localhost`))
const hashed = await runCli('agent', ['hash-password', '--password-stdin'], { input: PASSWORD })
const passwordHash = hashed.stdout.trim()
const origin = await startHttpOrigin(t, {
  // A local site trying to set the relay's own cookies next to one of its own.
  '/set-cookies': (_req, res) => {
    res.setHeader('set-cookie', ['porchlight_access=from-origin; Path=/', '__Host-porchlight_access=from-origin; Path=/; Secure', 'site=1; Path=/'])
    res.end('cookies set')
  },
})
const relay = new RelayProcess(t, {})
relay.config['pki'] = pki.dir
relay.config['state'] = join(relay.dir, 'state')
// Visitors' HTTPS: for the __Host- cookie and for visitor client certificates (TLS only).
relay.config.listen.public_tls = { address: '127.0.0.1:0', certs: [siteCert] }
await relay.start()
const httpPort = relay.publicPort
const tlsPort = splitHostPort(relay.publicTls ?? '').port

const basic = { user: 'alice', password_hash: passwordHash }
const agent = await startAgent(t, relay, {
  extra: { inspect: `127.0.0.1:${await freePort()}` },
  tunnels: [
    { http: 'open', to: origin.url },
    { http: 'share', to: origin.url, access: { links: true } },
    { http: 'other', to: origin.url, access: { links: true } },
    { http: 'team', to: origin.url, access: { basic } },
    { http: 'limited', to: origin.url, access: { basic } },
    { http: 'office', to: origin.url, access: { allow_ips: [OTHER_IP] } },
    { http: 'vpn', to: origin.url, access: { allow_ips: [OTHER_IP], links: true, basic } },
    { http: 'photos', to: origin.url, access: { client_certs: true } },
    { http: 'family', to: origin.url, access: { client_certs: true, basic } },
    { http: 'named', to: origin.url, access: { client_certs: ['alice-phone'] } },
  ],
})
const agentConfig = agent.configFile ?? ''

// ---------------------------------------------------------------- helpers

const scratch = childDir(t, 'curl')

/** A visit with the real curl binary, trusting the relay CA for HTTPS (see curlPage). */
function browse(url: string, opts: Omit<CurlPageOptions, 'dir' | 'cacert'> = {}): Promise<CurlPage> {
  return curlPage(url, { dir: scratch, cacert: pki.caCert, ...opts })
}

function httpsUrl(host: string, path = '/'): string { return `https://${host}.localhost:${tlsPort}${path}` }
function httpUrl(host: string, path = '/'): string { return `http://${host}.localhost:${httpPort}${path}` }

// keepAlive off: one connection per request, from the chosen source address.
const sourceAgents = new Map([['127.0.0.1', new Agent({ localAddress: '127.0.0.1' })], [OTHER_IP, new Agent({ localAddress: OTHER_IP })]])

/** A plain-HTTP request to HOST.localhost through the relay, from a chosen loopback source address. */
function get(host: string, opts: { path?: string; method?: string; headers?: Record<string, string>; from?: string } = {}): Promise<VisitResult> {
  return visit(httpPort, {
    host: `${host}.localhost`,
    path: opts.path ?? '/',
    method: opts.method ?? 'GET',
    headers: opts.headers ?? {},
    agent: sourceAgents.get(opts.from ?? '127.0.0.1'),
  })
}

/** Runs a program to completion; resolves with its exit code and output. */
function run(file: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise(resolve => {
    execFile(file, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null
      resolve({ code, stdout: String(stdout), stderr: String(stderr) })
    })
  })
}

function basicHeader(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` }
}

/** What the origin saw for the request whose path is `url` (paths in this file are unique). */
function seenByOrigin(url: string): OriginRequest | undefined {
  return origin.requests.find(r => r.url === url)
}

/** `porchlight link create HOST --expires E [--note N] -c agent.yaml --json`. */
async function createLink(host: string, expires: string, note?: string): Promise<{ id: string; url: string; expires_at: string; token: string }> {
  const res = await runCli('agent', ['link', 'create', host, '--expires', expires, ...(note !== undefined ? ['--note', note] : []), '-c', agentConfig, '--json'])
  if (res.code !== 0) throw new Error(`link create failed: ${res.stdout}${res.stderr}`)
  const link = JSON.parse(res.stdout) as { id: string; url: string; expires_at: string }
  const token = new URL(link.url).searchParams.get('porchlight_share') ?? ''
  return { ...link, token }
}

/** Changes the first character of the token's MAC (six real bits; the last one is partly padding). */
function tamper(token: string): string {
  const at = token.indexOf('.') + 1
  return `${token.slice(0, at)}${token[at] === 'A' ? 'B' : 'A'}${token.slice(at + 1)}`
}

/** Asserts a refusal: status and the relay's `x-porchlight-error` code. */
function denied(t: Test, page: { status: number; headers: Record<string, string[] | string | undefined> }, status: number, code: string, what: string): void {
  t.equal(page.status, status, `${what}: status`)
  const header = page.headers['x-porchlight-error']
  t.equal(Array.isArray(header) ? header[0] : header, code, `${what}: code`)
}

// ---------------------------------------------------------------- share links

t.test('link create prints a share URL for the tunnel', async t => {
  t.same(agent.urls.sort(), [...SITES].sort().map(n => `https://${n}.localhost:${tlsPort}`))
  const res = await runCli('agent', ['link', 'create', 'share.localhost', '--expires', '1h', '--note', 'for Bob', '-c', agentConfig])
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, new RegExp(`^https://share\\.localhost:${tlsPort}/\\?porchlight_share=[A-Za-z0-9_%.-]{60,}\\n$`))
  // By tunnel name too; a tunnel without `links: true` gets no link.
  const byName = await runCli('agent', ['link', 'create', 'other', '-c', agentConfig])
  t.match(byName.stdout, new RegExp(`^https://other\\.localhost:${tlsPort}/\\?porchlight_share=`))
  const refused = await runCli('agent', ['link', 'create', 'team.localhost', '-c', agentConfig])
  t.equal(refused.code, 1)
  t.match(refused.stderr, /share links are not enabled for team\.localhost/)
})

t.test('HTTPS: the link sets an HttpOnly, SameSite=Lax, Secure __Host- cookie and redirects without the token', async t => {
  const link = await createLink('share.localhost', '1h', 'https flow')
  const jar = join(scratch, 'https.jar')
  const first = await browse(`${httpsUrl('share', '/docs/intro')}?a=1&porchlight_share=${encodeURIComponent(link.token)}&b=2`, { jar })
  t.equal(first.status, 302)
  t.same(first.headers['location'], ['/docs/intro?a=1&b=2'], 'same URL without the token, other parameters kept')
  const setCookie = first.headers['set-cookie'] ?? []
  t.equal(setCookie.length, 1)
  const m = /^__Host-porchlight_access=([^;]+); Path=\/; Max-Age=(\d+); HttpOnly; SameSite=Lax; Secure$/.exec(setCookie[0] ?? '')
  t.ok(m, `Set-Cookie: ${setCookie[0]}`)
  t.equal(m?.[1], link.token, 'the cookie carries the link token')
  const maxAge = Number(m?.[2])
  t.ok(maxAge > 3590 && maxAge <= 3600, `Max-Age ${maxAge} s = time left on the 1 h link`)
  t.equal(origin.requests.filter(r => r.url.startsWith('/docs/intro')).length, 0, 'the redirect itself never reached the origin')

  // curl's jar: host-only (no leading dot, subdomains FALSE), path /, secure, HttpOnly.
  const cookies = jarCookies(jar)
  t.equal(cookies.length, 1)
  const [domain, subdomains, path, secure, expires, name, value] = cookies[0] ?? []
  t.equal(domain, '#HttpOnly_share.localhost')
  t.equal(subdomains, 'FALSE')
  t.equal(path, '/')
  t.equal(secure, 'TRUE')
  t.equal(name, '__Host-porchlight_access')
  t.equal(value, link.token)
  const expiresS = Number(expires)
  const linkExpiresS = Date.parse(link.expires_at) / 1000
  t.ok(Math.abs(expiresS - linkExpiresS) <= 5, `cookie expires with the link (${expiresS} vs ${linkExpiresS})`)

  // The jar alone now lets curl in; the origin never sees the cookie or the token.
  const next = await browse(httpsUrl('share', '/with-cookie?x=1'), { jar })
  t.equal(next.status, 200)
  const seen = JSON.parse(next.body) as OriginRequest
  t.equal(seen.url, '/with-cookie?x=1')
  t.equal(seen.headers['cookie'], undefined, 'relay cookie stripped')
  t.equal(seen.headers['x-forwarded-proto'], 'https')

  // Following the link from scratch: 302 then 200, and the origin saw the URL without the token.
  const followed = await browse(`${httpsUrl('share', '/follow')}?porchlight_share=${encodeURIComponent(link.token)}`, { jar: join(scratch, 'follow.jar'), follow: true })
  t.same(followed.statuses, [302, 200])
  t.equal((JSON.parse(followed.body) as OriginRequest).url, '/follow')
  t.notMatch(JSON.stringify(origin.requests), /porchlight_share|porchlight_access/, 'no token or relay cookie ever reached the origin')
})

t.test('plain HTTP: the cookie is porchlight_access, not Secure; site cookies still reach the origin', async t => {
  const link = await createLink('share', '1h')
  const jar = join(scratch, 'http.jar')
  const first = await browse(`${httpUrl('share', '/')}?porchlight_share=${encodeURIComponent(link.token)}`, { jar })
  t.equal(first.status, 302)
  t.same(first.headers['location'], ['/'])
  t.match(first.headers['set-cookie']?.[0] ?? '', /^porchlight_access=[^;]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/)
  const [domain, , , secure, , name] = jarCookies(jar)[0] ?? []
  t.equal(domain, '#HttpOnly_share.localhost')
  t.equal(secure, 'FALSE')
  t.equal(name, 'porchlight_access')

  const mixed = await get('share', { path: '/mixed-cookies', headers: { cookie: `theme=dark; porchlight_access=${link.token}; lang=en` } })
  t.equal(mixed.status, 200)
  t.equal(seenByOrigin('/mixed-cookies')?.headers['cookie'], 'theme=dark; lang=en', 'only the relay cookie removed')
  // The HTTPS cookie name means nothing on plain HTTP (a __Host- cookie is never sent there).
  const wrongScheme = await get('share', { path: '/wrong-scheme', headers: { cookie: `__Host-porchlight_access=${link.token}` } })
  denied(t, wrongScheme, 401, 'PL_ERR_ACCESS_UNAUTHORIZED', '__Host- cookie over http')
})

t.test('tampered, other-host, expired and revoked tokens and cookies get the 401 "invalid or expired" page', async t => {
  const link = await createLink('share.localhost', '1h', 'to be tampered with')
  const jar = join(scratch, 'tamper.jar')
  t.equal((await browse(`${httpsUrl('share')}?porchlight_share=${encodeURIComponent(link.token)}`, { jar })).status, 302)

  const expectInvalid = (page: CurlPage, what: string): void => {
    denied(t, page, 401, 'PL_ERR_ACCESS_LINK_INVALID', what)
    t.match(page.body, LINK_INVALID_TEXT, `${what}: page says the link is invalid or expired`)
  }
  // Tampered token: one character of the MAC, and a payload re-encoded for another host.
  expectInvalid(await browse(`${httpsUrl('share', '/t1')}?porchlight_share=${encodeURIComponent(tamper(link.token))}`), 'tampered token')
  const [payload, mac] = link.token.split('.')
  const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<string, unknown>
  const forged = `${Buffer.from(JSON.stringify({ ...claims, h: 'other.localhost' })).toString('base64url')}.${mac}`
  expectInvalid(await browse(`${httpsUrl('other', '/t2')}?porchlight_share=${encodeURIComponent(forged)}`), 'payload re-signed for another host without the key')
  // Tampered cookie, written into curl's own jar.
  const tamperedJar = join(scratch, 'tampered.jar')
  writeFileSync(tamperedJar, readFileSync(jar, 'utf8').replace(link.token, tamper(link.token)))
  expectInvalid(await browse(httpsUrl('share', '/t3'), { jar: tamperedJar }), 'tampered cookie')

  // Other host: the token, and the cookie (a browser would not even send it: the jar is host-only).
  expectInvalid(await browse(`${httpsUrl('other', '/t4')}?porchlight_share=${encodeURIComponent(link.token)}`), 'token on another host')
  expectInvalid(await browse(httpsUrl('other', '/t5'), { args: ['-H', `Cookie: __Host-porchlight_access=${link.token}`] }), 'cookie on another host')
  denied(t, await browse(httpsUrl('other', '/t6'), { jar }), 401, 'PL_ERR_ACCESS_UNAUTHORIZED', 'jar sends share.localhost cookie nowhere else')

  // HTML for browsers says the same.
  const html = await browse(httpsUrl('share', '/t7'), { args: ['-H', `Cookie: __Host-porchlight_access=${tamper(link.token)}`, '-H', 'Accept: text/html'] })
  t.equal(html.status, 401)
  t.match(html.body, /<html/)
  t.match(html.body, LINK_INVALID_TEXT)
  t.equal(origin.requests.filter(r => /^\/t\d$/.test(r.url)).length, 0, 'no refused request reached the origin')
  // The untouched cookie still works.
  t.equal((await browse(httpsUrl('share', '/t8'), { jar })).status, 200)
})

t.test('an expired link: the jar drops the cookie, and the relay refuses it and the token', async t => {
  // Long enough for `link create` plus two visits on a loaded CI machine, short enough to wait out.
  const link = await createLink('share.localhost', '5s')
  const jar = join(scratch, 'expiring.jar')
  const first = await browse(`${httpsUrl('share')}?porchlight_share=${encodeURIComponent(link.token)}`, { jar })
  t.equal(first.status, 302)
  t.match(first.headers['set-cookie']?.[0] ?? '', /Max-Age=[0-5];/, 'cookie lives only as long as the link')
  t.equal((await browse(httpsUrl('share', '/before-expiry'), { jar })).status, 200)
  // Let the link expire (time passing is the point of this test; nothing to wait on instead).
  const waitMs = Date.parse(link.expires_at) - Date.now() + 250
  if (waitMs > 0) await new Promise(resolve => setTimeout(resolve, waitMs))
  denied(t, await browse(httpsUrl('share', '/jar-after-expiry'), { jar }), 401, 'PL_ERR_ACCESS_UNAUTHORIZED', 'curl no longer sends the expired cookie')
  const cookie = await browse(httpsUrl('share', '/cookie-after-expiry'), { args: ['-H', `Cookie: __Host-porchlight_access=${link.token}`] })
  denied(t, cookie, 401, 'PL_ERR_ACCESS_LINK_INVALID', 'expired cookie sent anyway')
  t.match(cookie.body, LINK_INVALID_TEXT)
  const token = await browse(`${httpsUrl('share', '/token-after-expiry')}?porchlight_share=${encodeURIComponent(link.token)}`)
  denied(t, token, 401, 'PL_ERR_ACCESS_LINK_INVALID', 'expired token')
})

// Shared with the restart test below.
let revokedLink: { id: string; token: string } | null = null
let keptJar = ''

t.test('link list and link revoke: the very next request with the cookie is refused', async t => {
  const link = await createLink('share.localhost', '2h', 'for Carol')
  const keep = await createLink('share.localhost', '2h', 'stays valid')
  const jar = join(scratch, 'revoke.jar')
  keptJar = join(scratch, 'kept.jar')
  t.equal((await browse(`${httpsUrl('share')}?porchlight_share=${encodeURIComponent(link.token)}`, { jar })).status, 302)
  t.equal((await browse(`${httpsUrl('share')}?porchlight_share=${encodeURIComponent(keep.token)}`, { jar: keptJar })).status, 302)
  t.equal((await browse(httpsUrl('share', '/r1'), { jar })).status, 200)

  const list = await runCli('agent', ['link', 'list', '-c', agentConfig])
  t.equal(list.code, 0, list.stderr)
  t.match(list.stdout, /^ID\s+HOST\s+EXPIRES\s+NOTE$/m)
  t.match(list.stdout, new RegExp(`^${link.id}\\s+share\\.localhost\\s+\\d{4}-\\d{2}-\\d{2}T[\\d:.]+Z\\s+for Carol$`, 'm'))

  const revoked = await runCli('agent', ['link', 'revoke', link.id, '-c', agentConfig])
  t.equal(revoked.code, 0, revoked.stderr)
  t.equal(revoked.stdout, `revoked ${link.id}\n`)
  const after = await browse(httpsUrl('share', '/r2'), { jar })
  denied(t, after, 401, 'PL_ERR_ACCESS_LINK_INVALID', 'cookie right after revoke')
  t.match(after.body, LINK_INVALID_TEXT)
  denied(t, await browse(`${httpsUrl('share', '/r3')}?porchlight_share=${encodeURIComponent(link.token)}`), 401, 'PL_ERR_ACCESS_LINK_INVALID', 'revoked token')
  t.equal((await browse(httpsUrl('share', '/r4'), { jar: keptJar })).status, 200, 'other links unaffected')

  const listed = await runCli('agent', ['link', 'list', '-c', agentConfig, '--json'])
  const entries = JSON.parse(listed.stdout) as Array<{ id: string; revoked: boolean; note: string }>
  t.match(entries.find(e => e.id === link.id), { id: link.id, host: 'share.localhost', revoked: true, note: 'for Carol' }, 'list shows it revoked')
  t.notMatch(list.stdout, /porchlight_share/, 'link list never prints tokens')
  t.notMatch(listed.stdout, link.token)
  revokedLink = { id: link.id, token: link.token }
})

t.test('link revocations and the signing key survive a relay restart (state: dir)', async t => {
  t.ok(revokedLink !== null, 'the revoke test ran first')
  const stateDir = join(relay.dir, 'state')
  for (const file of ['link-secret', 'links.json']) {
    t.equal(statSync(join(stateDir, file)).mode & 0o777, 0o600, `${file} is mode 0600`)
  }
  const stored = readFileSync(join(stateDir, 'links.json'), 'utf8')
  t.notMatch(stored, revokedLink?.token ?? 'x', 'links.json holds no token')

  relay.config.listen.public_tls = { address: `127.0.0.1:${tlsPort}`, certs: [siteCert] }
  const started = Date.now()
  await relay.restart()
  t.equal(relay.publicPort, httpPort)
  const back = await pollUntil(() => browse(httpsUrl('open', '/after-restart-probe')), p => p.status === 200, { timeoutMs: 8000, intervalMs: 200 })
  t.ok(back.ok, `agent back ${Date.now() - started} ms after the restart began`)

  const revoked = await browse(`${httpsUrl('share', '/after-restart-revoked')}?porchlight_share=${encodeURIComponent(revokedLink?.token ?? '')}`)
  denied(t, revoked, 401, 'PL_ERR_ACCESS_LINK_INVALID', 'revoked token after restart')
  t.equal((await browse(httpsUrl('share', '/after-restart-kept'), { jar: keptJar })).status, 200, 'a cookie issued before the restart still works')
  const list = JSON.parse((await runCli('agent', ['link', 'list', '-c', agentConfig, '--json'])).stdout) as Array<{ id: string; revoked: boolean }>
  t.equal(list.find(l => l.id === revokedLink?.id)?.revoked, true, 'still listed as revoked')
})

// ---------------------------------------------------------------- basic auth

t.test('basic auth: 401 with a challenge, the right password gets in, Authorization is not forwarded', async t => {
  t.match(passwordHash, /^scrypt:32768:8:1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/, 'hash-password --password-stdin')
  const none = await get('team', { path: '/b1' })
  denied(t, none, 401, 'PL_ERR_ACCESS_UNAUTHORIZED', 'no credentials')
  t.equal(none.headers['www-authenticate'], 'Basic realm="porchlight"')
  const wrong = await get('team', { path: '/b2', headers: basicHeader('alice', 'wrong password') })
  denied(t, wrong, 401, 'PL_ERR_ACCESS_UNAUTHORIZED', 'wrong password')
  t.equal(wrong.headers['www-authenticate'], 'Basic realm="porchlight"')
  const wrongUser = await get('team', { path: '/b3', headers: basicHeader('mallory', PASSWORD) })
  t.equal(wrongUser.status, 401, 'wrong user')
  t.equal(wrongUser.text, wrong.text, 'wrong user and wrong password look the same')

  const ok = await browse(httpsUrl('team', '/b4'), { args: ['-u', `alice:${PASSWORD}`] })
  t.equal(ok.status, 200)
  t.equal(seenByOrigin('/b4')?.headers['authorization'], undefined, 'Authorization not forwarded')
  t.equal(origin.requests.filter(r => /^\/b[123]$/.test(r.url)).length, 0, 'refused requests never reached the origin')
})

t.test('HTTPS: Expect: 100-continue to a protected site gets 401 with no 100 first; 201 header lines get 431', async t => {
  const upload = join(scratch, 'expect-upload.bin')
  writeFileSync(upload, Buffer.alloc(2 * 1024 * 1024, 7))
  const before = origin.requestCount
  const refused = await browse(httpsUrl('team', '/expect'), { args: ['-H', 'Expect: 100-continue', '--data-binary', `@${upload}`] })
  t.same(refused.statuses, [401], 'curl saw only the 401: no 100 Continue before the access check')
  const allowed = await browse(httpsUrl('team', '/upload'), { args: ['-u', `alice:${PASSWORD}`, '-H', 'Expect: 100-continue', '--data-binary', `@${upload}`] })
  t.same(allowed.statuses, [100, 200], 'with credentials: 100 Continue, then 200')
  t.equal((JSON.parse(allowed.body) as { bytes: number }).bytes, 2 * 1024 * 1024, 'and the body arrived whole')
  const headers = Array.from({ length: 201 }, (_, i) => ['-H', `x-${i}: a`]).flat()
  const tooMany = await browse(httpsUrl('open', '/too-many'), { args: headers })
  t.equal(tooMany.status, 431, '201 header lines over HTTPS: 431')
  t.equal(origin.requestCount, before + 1, 'only the authorised upload reached the origin')
})

t.test('basic auth failures are rate-limited per address (429) without locking out another address', async t => {
  const statuses: number[] = []
  for (let i = 0; i < 11; i++) statuses.push((await get('limited', { path: `/rl-${i}`, headers: basicHeader('alice', `guess ${i}`) })).status)
  t.same(statuses, [...Array(10).fill(401), 429], '10 failures in 5 minutes, then 429')
  const limited = await get('limited', { path: '/rl-right', headers: basicHeader('alice', PASSWORD) })
  denied(t, limited, 429, 'PL_ERR_ACCESS_RATE_LIMITED', 'even the right password from the limited address')
  const retryAfter = Number(limited.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= 300, `Retry-After ${retryAfter} s`)
  // Another address: its own counter; the real user still gets in.
  t.equal((await get('limited', { path: '/rl-other-wrong', headers: basicHeader('alice', 'nope'), from: OTHER_IP })).status, 401)
  t.equal((await get('limited', { path: '/rl-other', headers: basicHeader('alice', PASSWORD), from: OTHER_IP })).status, 200)
  // docs/access.md: "10 failed attempts in 5 minutes from one address for one site" - the
  // site's HTTPS listener counts the same failures.
  const overTls = await browse(httpsUrl('limited', '/rl-tls'), { args: ['-u', 'alice:tls guess'] })
  t.equal(overTls.status, 429, 'same address, same site, over HTTPS')
  // And another site on the same address: also its own counter.
  t.equal((await get('team', { path: '/rl-team', headers: basicHeader('alice', PASSWORD) })).status, 200)
  t.equal(origin.requests.filter(r => r.url.startsWith('/rl-') && r.url !== '/rl-other' && r.url !== '/rl-team').length, 0)
})

// ---------------------------------------------------------------- IP allow-list

t.test('allow_ips: an allowed and a refused source address; X-Forwarded-For is not believed', async t => {
  const allowed = await get('office', { path: '/ip-allowed', from: OTHER_IP })
  t.equal(allowed.status, 200)
  t.equal(seenByOrigin('/ip-allowed')?.headers['x-forwarded-for'], OTHER_IP)
  const refused = await get('office', { path: '/ip-refused' })
  denied(t, refused, 403, 'PL_ERR_ACCESS_DENIED', 'from 127.0.0.1')
  const spoofed = await get('office', { path: '/ip-spoofed', headers: { 'x-forwarded-for': OTHER_IP, 'x-real-ip': OTHER_IP, forwarded: `for=${OTHER_IP}` } })
  denied(t, spoofed, 403, 'PL_ERR_ACCESS_DENIED', 'spoofed forwarding headers')
  // The real curl from the second loopback address.
  const viaCurl = await browse(httpUrl('office', '/ip-curl'), { from: OTHER_IP })
  t.equal(viaCurl.status, 200)
  t.equal((await browse(httpsUrl('office', '/ip-curl-tls'))).status, 403, 'HTTPS listener applies it too')
  t.equal(origin.requests.filter(r => r.url === '/ip-refused' || r.url === '/ip-spoofed' || r.url === '/ip-curl-tls').length, 0)
})

t.test('allow_ips always restricts; then any one of links or basic admits', async t => {
  const link = await createLink('vpn.localhost', '1h')
  // From a refused address nothing helps, not even valid credentials or a valid link.
  denied(t, await get('vpn', { path: '/v1', headers: basicHeader('alice', PASSWORD) }), 403, 'PL_ERR_ACCESS_DENIED', 'right password, wrong address')
  denied(t, await get('vpn', { path: `/v2?porchlight_share=${encodeURIComponent(link.token)}` }), 403, 'PL_ERR_ACCESS_DENIED', 'valid link, wrong address')
  denied(t, await get('vpn', { path: '/v3', headers: { cookie: `porchlight_access=${link.token}` } }), 403, 'PL_ERR_ACCESS_DENIED', 'valid cookie, wrong address')
  // From the allowed address: credentials still needed, and either method is enough.
  const none = await get('vpn', { path: '/v4', from: OTHER_IP })
  t.equal(none.status, 401)
  t.equal(none.headers['www-authenticate'], 'Basic realm="porchlight"')
  t.equal((await get('vpn', { path: '/v5', from: OTHER_IP, headers: basicHeader('alice', PASSWORD) })).status, 200, 'basic alone')
  const viaLink = await get('vpn', { path: `/v6?porchlight_share=${encodeURIComponent(link.token)}`, from: OTHER_IP })
  t.equal(viaLink.status, 302, 'link alone')
  t.equal((await get('vpn', { path: '/v7', from: OTHER_IP, headers: { cookie: `porchlight_access=${link.token}` } })).status, 200, 'cookie alone')
  t.same(origin.requests.filter(r => /^\/v\d/.test(r.url)).map(r => r.url).sort(), ['/v5', '/v7'])
})

// ---------------------------------------------------------------- one gate for every entry path

// SECURITY B10 (b), C8: upgrades go through the same access check.
t.test('WebSocket upgrades are refused without access and pass with it', async t => {
  const before = origin.upgrades.length
  const upgrade = (host: string, opts: { cookie?: string; from?: string } = {}): Promise<{ status: number; ws: WebSocket | null }> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${httpPort}/ws/live`, {
        headers: { host: `${host}.localhost`, ...(opts.cookie !== undefined ? { cookie: opts.cookie } : {}) },
        localAddress: opts.from ?? '127.0.0.1',
        perMessageDeflate: false,
      })
      ws.once('unexpected-response', (_req, res) => { res.resume(); resolve({ status: res.statusCode ?? 0, ws: null }) })
      ws.once('open', () => resolve({ status: 101, ws }))
      ws.once('error', reject)
    })
  t.equal((await upgrade('share')).status, 401, 'links site, no cookie')
  t.equal((await upgrade('team')).status, 401, 'basic site, no credentials')
  t.equal((await upgrade('office')).status, 403, 'allow_ips site from a refused address')
  t.equal((await upgrade('photos')).status, 403, 'certificate site over plain HTTP')
  t.equal(origin.upgrades.length, before, 'no refused upgrade reached the origin')

  const link = await createLink('share.localhost', '1h')
  const allowed = await upgrade('share', { cookie: `porchlight_access=${link.token}; theme=dark` })
  t.equal(allowed.status, 101)
  const ws = allowed.ws
  t.teardown(() => ws?.terminate())
  const echoed = new Promise<string>(resolve => ws?.once('message', data => resolve(String(data))))
  ws?.send('hello through the gate')
  t.equal(await echoed, 'hello through the gate')
  t.equal(origin.upgrades.at(-1)?.['cookie'], 'theme=dark', 'relay cookie stripped from the upgrade too')
  const office = await upgrade('office', { from: OTHER_IP })
  t.equal(office.status, 101, 'allow_ips site from the allowed address')
  office.ws?.terminate()
})

// SECURITY C8: uniform enforcement for HEAD, OPTIONS and /favicon.ico.
t.test('HEAD, OPTIONS (CORS preflight) and /favicon.ico go through the same check', async t => {
  const before = origin.requestCount
  denied(t, await get('share', { method: 'HEAD', path: '/h1' }), 401, 'PL_ERR_ACCESS_UNAUTHORIZED', 'HEAD')
  const preflight = await get('share', { method: 'OPTIONS', path: '/h2', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  denied(t, preflight, 401, 'PL_ERR_ACCESS_UNAUTHORIZED', 'OPTIONS preflight')
  denied(t, await get('share', { path: '/favicon.ico' }), 401, 'PL_ERR_ACCESS_UNAUTHORIZED', 'favicon')
  denied(t, await get('team', { method: 'OPTIONS', path: '/h3' }), 401, 'PL_ERR_ACCESS_UNAUTHORIZED', 'OPTIONS on basic')
  denied(t, await get('office', { method: 'HEAD', path: '/h4' }), 403, 'PL_ERR_ACCESS_DENIED', 'HEAD on allow_ips')
  t.equal(origin.requestCount, before, 'none reached the origin')
  const link = await createLink('share.localhost', '1h')
  const head = await get('share', { method: 'HEAD', path: '/h5', headers: { cookie: `porchlight_access=${link.token}` } })
  t.equal(head.status, 200, 'HEAD with the cookie')
  t.equal(head.text, '')
})

// ---------------------------------------------------------------- visitor client certificates

t.test('client_certs: a visitor certificate from the relay CA admits over HTTPS; none, foreign, an agent\'s or revoked do not', async t => {
  const phone = await issueCert(pki, 'alice-phone', 'alice-phone.pem', { visitor: true })
  const bob = await issueCert(pki, 'bob-phone', 'bob-phone.pem', { visitor: true })
  const agentBundle = await issueCert(pki, 'laptop', 'laptop-agent.pem')
  const foreign = await foreignCert(pki, 'alice-phone', 'alice-foreign.pem')
  const withCert = (file: string): string[] => ['--cert', file, '--key', file]
  const ok = await browse(httpsUrl('photos', '/c1'), { args: withCert(phone.file) })
  t.equal(ok.status, 200, 'issued certificate')
  // docs/access.md: the bundle converts to PKCS#12 for a browser or phone, and that works too.
  const p12 = `${phone.file}.p12`
  const exported = await run('openssl', ['pkcs12', '-export', '-in', phone.file, '-inkey', phone.file, '-out', p12, '-passout', 'pass:e2e'])
  t.equal(exported.code, 0, exported.stderr)
  t.equal((await browse(httpsUrl('photos', '/c0'), { args: ['--cert-type', 'P12', '--cert', `${p12}:e2e`] })).status, 200, 'PKCS#12 export of the bundle')
  denied(t, await browse(httpsUrl('photos', '/c2')), 403, 'PL_ERR_ACCESS_DENIED', 'no certificate')
  denied(t, await browse(httpsUrl('photos', '/c3'), { args: withCert(foreign.file) }), 403, 'PL_ERR_ACCESS_DENIED', 'certificate from another CA')
  denied(t, await get('photos', { path: '/c4' }), 403, 'PL_ERR_ACCESS_DENIED', 'plain HTTP has no certificates')
  denied(t, await browse(httpsUrl('photos', '/c7'), { args: withCert(agentBundle.file) }), 403, 'PL_ERR_ACCESS_DENIED', "an agent's certificate never opens a visitor site")
  // client_certs: [names]: only the listed visitor certificates.
  t.equal((await browse(httpsUrl('named', '/n1'), { args: withCert(phone.file) })).status, 200, 'a listed visitor certificate')
  denied(t, await browse(httpsUrl('named', '/n2'), { args: withCert(bob.file) }), 403, 'PL_ERR_ACCESS_DENIED', 'a visitor certificate not in the list')
  // Certificate or password: either one admits, neither gets the password prompt.
  t.equal((await browse(httpsUrl('family', '/f1'), { args: withCert(phone.file) })).status, 200, 'certificate, no password')
  t.equal((await browse(httpsUrl('family', '/f2'), { args: ['-u', `alice:${PASSWORD}`] })).status, 200, 'password, no certificate')
  const neither = await browse(httpsUrl('family', '/f3'))
  denied(t, neither, 401, 'PL_ERR_ACCESS_UNAUTHORIZED', 'neither')
  t.same(neither.headers['www-authenticate'], ['Basic realm="porchlight"'])

  // The relay polls revoked.json once a second; until it has seen the change the old answer stands.
  const started = Date.now()
  await revokeCert(pki, 'alice-phone')
  const refused = await pollUntil(() => browse(httpsUrl('photos', '/c5'), { args: withCert(phone.file) }), p => p.status === 403, { timeoutMs: 5000, intervalMs: 100 })
  const ms = Date.now() - started
  t.ok(refused.ok && ms < 5000, `revoked visitor certificate refused ${ms} ms after cert revoke began (no restart)`)
  t.comment(`visitor certificate revocation effective after ${ms} ms`)
  denied(t, await browse(httpsUrl('photos', '/c6'), { args: withCert(phone.file) }), 403, 'PL_ERR_ACCESS_DENIED', 'revoked certificate')
  t.same(origin.requests.filter(r => /^\/(c[0-467]|n[12])$/.test(r.url)).map(r => r.url), ['/c1', '/c0', '/n1'], 'only the admitted requests reached the origin')
})

t.test('the relay cookie and token never reach an origin, even on a site without access rules', async t => {
  const link = await createLink('share.localhost', '1h')
  // 'open' has no access block: the relay's names still belong to the relay.
  const res = await get('open', { path: `/open-strip?porchlight_share=${encodeURIComponent(link.token)}&q=1`, headers: { cookie: `porchlight_access=${link.token}; theme=dark` } })
  t.equal(res.status, 200)
  const seen = seenByOrigin('/open-strip?q=1') ?? seenByOrigin(`/open-strip?porchlight_share=${encodeURIComponent(link.token)}&q=1`)
  t.equal(seen?.headers['cookie'], 'theme=dark', 'relay cookie removed on an open site')
  // Product gap (reported): a site without `access:` gets the request target as sent, token included.
  t.equal(seen?.url, '/open-strip?q=1', 'share token removed on an open site')
})

t.test('a local site cannot set the relay cookies', async t => {
  for (const page of [await browse(httpsUrl('open', '/set-cookies')), await browse(httpUrl('open', '/set-cookies'))]) {
    t.equal(page.status, 200)
    t.same(page.headers['set-cookie'], ['site=1; Path=/'])
  }
})

// SECURITY A2: secrets never logged (grep over relay and agent logs).
t.test('tokens, cookies and passwords never appear in the relay or agent logs', async t => {
  const link = await createLink('share.localhost', '1h')
  await get('share', { path: `/log-check?porchlight_share=${encodeURIComponent(link.token)}` })
  await get('share', { path: '/log-check-cookie', headers: { cookie: `porchlight_access=${link.token}` } })
  await get('team', { path: '/log-check-basic', headers: basicHeader('alice', PASSWORD) })
  const denial = await relay.waitForLog(l => l['msg'] === 'visitor denied', 5000, 'a visitor denied line')
  t.equal(denial['agent'], 'laptop')
  const logs = relay.output() + agent.stderr()
  t.notMatch(logs, link.token, 'no share token')
  t.notMatch(logs, PASSWORD, 'no password')
  t.notMatch(logs, Buffer.from(`alice:${PASSWORD}`).toString('base64'), 'no Authorization value')
  const access = await relay.waitForLog(l => l['msg'] === 'request' && String(l['url']).startsWith('/log-check?'), 5000, 'access line for /log-check')
  t.equal(access['url'], '/log-check?[redacted]', 'access line redacts the query')
  t.equal(access['status'], 302, 'the redirect that set the cookie')
})
