import t from 'tap'
import { checkDestination, matchDestination, parseOutboundRule, parseOutboundRules } from '../../src/agents/outbound-policy.js'

t.test('parseOutboundRule: every documented form, and the malformed ones', (t) => {
  const describe = (entry: string): string => {
    const r = parseOutboundRule(entry)
    if (!r.ok) return 'invalid'
    const rule = r.rule
    if (rule.kind === 'ip') return `ip ${rule.cidr.network.toString()}/${rule.cidr.prefixLength} ${rule.port}`
    if (rule.kind === 'suffix') return `suffix ${rule.suffix} ${rule.port}`
    return `name ${rule.name} ${rule.port}`
  }
  const cases: Array<[string, string]> = [
    ['smtp.example.com:587', 'name smtp.example.com 587'],
    ['SMTP.Example.com.:587', 'name smtp.example.com 587'],
    ['*.example.com:587', 'suffix example.com 587'],
    ['203.0.113.5:25', 'ip 203.0.113.5/32 25'],
    ['203.0.113.5/32:25', 'ip 203.0.113.5/32 25'],
    ['10.0.0.0/8:25', 'ip 10.0.0.0/8 25'],
    ['[::1]:25', 'ip ::1/128 25'],
    ['[2001:db8::/32]:443', 'ip 2001:db8::/32 443'],
    ['localhost:25', 'name localhost 25'],
    ['smtp.example.com', 'invalid'],
    ['smtp.example.com:', 'invalid'],
    ['smtp.example.com:0', 'invalid'],
    ['smtp.example.com:65536', 'invalid'],
    ['smtp.example.com:08', 'invalid'],
    ['smtp.example.com:1-2', 'invalid'],
    [':25', 'invalid'],
    ['::1:25', 'invalid'],
    ['[::1]25', 'invalid'],
    ['[10.0.0.1]:25', 'invalid'],
    ['[::ffff:10.0.0.1]:25', 'ip 10.0.0.1/32 25'],
    ['[fe80::1%eth0]:25', 'invalid'],
    ['2001:db8::/32:443', 'invalid'],
    ['127.1:25', 'invalid'],
    ['2130706433:25', 'invalid'],
    ['0x7f000001:25', 'invalid'],
    ['0177.0.0.1:25', 'invalid'],
    ['10.0.0.0/33:25', 'invalid'],
    ['*:25', 'invalid'],
    ['*.:25', 'invalid'],
    ['a.*.com:25', 'invalid'],
    ['exa mple.com:25', 'invalid'],
  ]
  for (const [entry, expected] of cases) t.equal(describe(entry), expected, entry)
  t.end()
})

t.test('parseOutboundRules names every bad entry', (t) => {
  t.equal(parseOutboundRules(['a.test:25', '10.0.0.0/8:25']).length, 2)
  let caught: { code?: string; details?: Array<{ path: string }> } = {}
  try {
    parseOutboundRules(['a.test:25', 'nope', '127.1:25'])
  } catch (err) {
    caught = err as typeof caught
  }
  t.equal(caught.code, 'PL_ERR_CONFIG_INVALID')
  t.same(caught.details?.map((d) => d.path), ['outbound[1]', 'outbound[2]'])
  t.end()
})

const RULES = parseOutboundRules([
  'smtp.allowed.test:587',
  '*.mail.test:25',
  '203.0.113.5:25',
  '10.0.0.0/8:25',
  '[2001:db8::/32]:443',
  '127.0.0.1:2525',
  'inside.test:25',
  'localhost:25',
  '0.0.0.0/0:8080',
])
// TEST-NET ranges are 'reserved' (special); these are ordinary global unicast addresses.
const PUBLIC = '93.184.215.14'
const NO_OWN = new Set<string>()

type Case = [host: string, port: number, resolved: string[], expected: string]
function verdict(host: string, port: number, resolved: string[], own: ReadonlySet<string> = NO_OWN): string {
  const v = checkDestination(host, port, resolved, RULES, own)
  return v.ok ? `ok ${v.address}` : 'denied'
}

t.test('D1: destinations outside the allowlist are refused', (t) => {
  const cases: Case[] = [
    ['smtp.allowed.test', 587, [PUBLIC], `ok ${PUBLIC}`],
    ['SMTP.ALLOWED.TEST.', 587, [PUBLIC], `ok ${PUBLIC}`],
    ['evil.test', 587, [PUBLIC], 'denied'],
    ['smtp.allowed.test', 25, [PUBLIC], 'denied'],
    ['127.0.0.1', 7070, [], 'denied'],
    ['169.254.169.254', 80, [], 'denied'],
    ['[::1]', 22, [], 'denied'],
    ['::1', 22, [], 'denied'],
    ['10.0.0.1', 587, [], 'denied'],
    ['10.0.0.1', 25, [], 'ok 10.0.0.1'],
    ['203.0.113.5', 25, [], 'ok 203.0.113.5'],
    ['203.0.113.6', 25, [], 'denied'],
    ['a.mail.test', 25, [PUBLIC], `ok ${PUBLIC}`],
    ['a.b.mail.test', 25, [PUBLIC], `ok ${PUBLIC}`],
    ['mail.test', 25, [PUBLIC], 'denied'],
    ['xmail.test', 25, [PUBLIC], 'denied'],
    ['[2001:db8::25]', 443, [], 'ok 2001:db8::25'],
    ['2001:db8::25', 443, [], 'ok 2001:db8::25'],
    ['2001:db9::25', 443, [], 'denied'],
  ]
  for (const [host, port, resolved, expected] of cases) t.equal(verdict(host, port, resolved), expected, `${host}:${port}`)
  t.end()
})

t.test('D2: every resolved address must pass; rebinding to special ranges and mixed answers fail closed', (t) => {
  const cases: Case[] = [
    ['smtp.allowed.test', 587, ['127.0.0.1'], 'denied'],
    ['smtp.allowed.test', 587, [PUBLIC, '127.0.0.1'], 'denied'],
    ['smtp.allowed.test', 587, ['127.0.0.1', PUBLIC], 'denied'],
    ['smtp.allowed.test', 587, [PUBLIC, '10.1.1.1'], 'denied'],
    ['smtp.allowed.test', 587, ['::ffff:127.0.0.1'], 'denied'],
    ['smtp.allowed.test', 587, ['169.254.169.254'], 'denied'],
    ['smtp.allowed.test', 587, ['fd00::1'], 'denied'],
    ['smtp.allowed.test', 587, ['64:ff9b::7f00:1'], 'denied'],
    ['smtp.allowed.test', 587, ['0.0.0.0'], 'denied'],
    ['smtp.allowed.test', 587, ['100.64.0.1'], 'denied'],
    ['smtp.allowed.test', 587, [], 'denied'],
    ['smtp.allowed.test', 587, ['not-an-ip'], 'denied'],
    ['smtp.allowed.test', 587, [PUBLIC, '2606:4700::1'], `ok ${PUBLIC}`],
    ['smtp.allowed.test', 587, ['::ffff:93.184.215.14'], `ok ${PUBLIC}`],
    // a name rule plus an explicit CIDR rule for the range it resolves into
    ['inside.test', 25, ['10.20.30.40'], 'ok 10.20.30.40'],
    ['inside.test', 25, ['10.20.30.40', '192.168.1.1'], 'denied'],
    ['localhost', 25, ['127.0.0.1'], 'denied'],
    ['localhost.', 25, ['::1'], 'denied'],
    // 0.0.0.0/0 is not "written for" loopback or private ranges
    ['127.0.0.1', 8080, [], 'denied'],
    ['10.0.0.1', 8080, [], 'denied'],
    [PUBLIC, 8080, [], `ok ${PUBLIC}`],
    ['127.0.0.1', 2525, [], 'ok 127.0.0.1'],
    ['0.0.0.0', 8080, [], 'denied'],
  ]
  for (const [host, port, resolved, expected] of cases) t.equal(verdict(host, port, resolved), expected, `${host}:${port} -> ${resolved.join(',')}`)
  t.end()
})

t.test('D3: obfuscated IP literals are refused even when their value is allowlisted', (t) => {
  const obfuscated = ['2130706433', '0x7f000001', '0177.0.0.1', '127.1', '127.0.0.01', '::ffff:127.0.0.1', '[::ffff:7f00:1]', '[fe80::1%lo]', '127.0.0.1.', '[127.0.0.1]']
  for (const host of obfuscated) {
    const v = checkDestination(host, 2525, ['127.0.0.1'], RULES, NO_OWN)
    t.equal(v.ok, false, host)
    if (!v.ok) t.equal(v.code, 'PL_ERR_POLICY_DEST_DENIED')
  }
  t.equal(verdict('127.0.0.1', 2525, []), 'ok 127.0.0.1', 'the canonical form of the allowlisted IP passes')
  t.end()
})

t.test("the relay's own addresses need a single-address rule", (t) => {
  const own = new Set([PUBLIC, '203.0.113.5'])
  t.equal(verdict('smtp.allowed.test', 587, [PUBLIC], own), 'denied')
  t.equal(verdict('203.0.113.5', 25, [], own), 'ok 203.0.113.5', 'explicit /32 rule')
  t.equal(verdict(PUBLIC, 8080, [], own), 'denied', '0.0.0.0/0 does not cover our own address')
  t.equal(verdict('smtp.allowed.test', 587, ['93.184.215.15'], own), 'ok 93.184.215.15')
  t.end()
})

t.test('matchDestination decides before any lookup', (t) => {
  t.same(matchDestination('smtp.allowed.test', 587, RULES), { ok: true, kind: 'name', name: 'smtp.allowed.test' })
  t.same(matchDestination('203.0.113.5', 25, RULES), { ok: true, kind: 'ip', address: '203.0.113.5' })
  const denied = matchDestination('evil.test', 587, RULES)
  t.equal(denied.ok, false)
  if (!denied.ok) t.match(denied.reason, /no outbound rule allows evil\.test:587/)
  t.equal(matchDestination('smtp.allowed.test', 0, RULES).ok, false)
  t.equal(matchDestination('smtp.allowed.test', 70000, RULES).ok, false)
  t.end()
})
