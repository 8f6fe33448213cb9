import t from 'tap'
import type { AgentStatus } from '../../src/agent.js'
import { parseDestinationArg, parseHttpTarget, parseLocalArg, parsePortArg } from '../../src/commands/args.js'
import { formatLinks } from '../../src/commands/link.js'
import { formatStatus } from '../../src/commands/status.js'

const base: AgentStatus = {
  version: '0.1.0', connected: true, state: 'connected', relay: 'wss://relay.example.com:7443', agent: 'laptop', session: 'abc',
  domain: 'tunnel.example.com', connectedAt: '2030-01-01T00:00:00.000Z', reconnect: null, lastError: null, streams: 2, inspect: '127.0.0.1:4040',
  links: [{ member: null, relay: 'wss://relay.example.com:7443', state: 'connected' }],
  tunnels: [
    { id: 'blog', kind: 'http', state: 'ready', url: 'https://blog.tunnel.example.com', to: 'http://127.0.0.1:80' },
    { id: 'admin', kind: 'http', state: 'rejected', url: null, to: 'http://127.0.0.1:81', code: 'PL_ERR_POLICY_HOST_DENIED', message: 'host admin is not allowed for agent laptop' },
    { id: 'forward:2525', kind: 'forward', state: 'listening', url: 'tcp://127.0.0.1:2525', to: 'smtp.example.com:587' },
  ],
}

t.test('status lines when connected', async (t) => {
  t.same(formatStatus(base, 0), [
    'Agent    porchlight 0.1.0: connected to wss://relay.example.com:7443 as laptop (session abc)',
    'Inspect  http://127.0.0.1:4040/ (request inspector; JSON at /api/status)',
    'Streams  2 in flight',
    'Tunnels',
    '  ready     blog          https://blog.tunnel.example.com -> http://127.0.0.1:80',
    '  rejected  admin         -> http://127.0.0.1:81  PL_ERR_POLICY_HOST_DENIED: host admin is not allowed for agent laptop',
    '  listening forward:2525  tcp://127.0.0.1:2525 -> smtp.example.com:587',
  ])
})

t.test('status lines while reconnecting show attempt and next delay', async (t) => {
  const now = Date.parse('2030-01-01T00:00:00.000Z')
  const lines = formatStatus({
    ...base, connected: false, state: 'reconnecting', session: null, tunnels: [],
    reconnect: { attempt: 4, delayMs: 7_000, nextAttemptAt: '2030-01-01T00:00:05.000Z' },
    lastError: { code: 'PL_ERR_LINK_CONNECT', message: 'cannot reach relay relay.example.com:7443: connect ECONNREFUSED' },
  }, now)
  t.equal(lines[0], 'Agent    porchlight 0.1.0: reconnecting to wss://relay.example.com:7443 (attempt 4, next in 5s)')
  t.equal(lines[1], 'Last error  PL_ERR_LINK_CONNECT: cannot reach relay relay.example.com:7443: connect ECONNREFUSED')
  t.equal(lines[lines.length - 1], 'Tunnels  none')
})

t.test('link table', async (t) => {
  t.same(formatLinks([]), ['no share links'])
  t.same(formatLinks([
    { id: 'a1', host: 'blog.localhost', note: 'for bob', expiresAt: Date.UTC(2030, 0, 2), revoked: false },
    { id: 'bb22', host: 'docs.localhost', note: '', expires_at: '2030-02-01T00:00:00.000Z', revoked: true },
  ]), [
    'ID    HOST            EXPIRES                   NOTE',
    'a1    blog.localhost  2030-01-02T00:00:00.000Z  for bob',
    'bb22  docs.localhost  revoked',
  ])
})

t.test('argument parsers', async (t) => {
  t.equal(parsePortArg('3000', 'PORT'), 3000)
  t.equal(parsePortArg('0', 'P', 0), 0)
  for (const bad of ['0', '65536', '-1', '80a', '', '1e3']) t.throws(() => parsePortArg(bad, 'PORT'), { code: 'PL_ERR_USAGE' }, bad)
  t.same(['3000', 'localhost:8080', '[::1]:80', 'http://127.0.0.1:3000', 'https://dev.local:8443'].map(parseHttpTarget), ['3000', 'localhost:8080', '[::1]:80', 'http://127.0.0.1:3000', 'https://dev.local:8443'])
  for (const bad of ['abc', 'ftp://x', 'http://', '3000:']) t.throws(() => parseHttpTarget(bad), { code: 'PL_ERR_USAGE' }, bad)
  t.equal(parseLocalArg('2525', 'LOCALPORT'), '127.0.0.1:2525')
  t.equal(parseLocalArg('0.0.0.0:2525', 'LOCALPORT'), '0.0.0.0:2525')
  t.equal(parseDestinationArg('smtp.example.com:587'), 'smtp.example.com:587')
  t.throws(() => parseDestinationArg('smtp.example.com'), { code: 'PL_ERR_USAGE' })
})
