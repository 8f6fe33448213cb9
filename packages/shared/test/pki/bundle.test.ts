import t from 'tap'
import { parseBundle } from '../../src/pki/bundle.js'

const block = (label: string, body: string) => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`
const CERT = block('CERTIFICATE', 'Q0VSVA==')
const CA = block('CERTIFICATE', 'Q0E=')
const KEY = block('PRIVATE KEY', 'S0VZ')

t.test('parseBundle splits cert, key and CA certificates', (t) => {
  const parsed = parseBundle(`${CERT}${KEY}${CA}`)
  t.same(parsed, { cert: CERT, key: KEY, ca: [CA] })
  t.same(parseBundle(`comment line\n${KEY}\n\n${CERT}trailing`), { cert: CERT, key: KEY, ca: [] }, 'text around blocks and any order')
  t.same(parseBundle(`${CERT}${KEY}${CA}`.replace(/\n/g, '\r\n')), { cert: CERT, key: KEY, ca: [CA] }, 'CRLF files')
  t.same(parseBundle(`${CERT}${block('RSA PRIVATE KEY', 'S0VZ')}`).key, block('RSA PRIVATE KEY', 'S0VZ'))
  t.end()
})

t.test('parseBundle refuses incomplete or ambiguous bundles with PL_ERR_TLS_FILE naming the source', (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['no cert', KEY, /no CERTIFICATE/],
    ['no key', `${CERT}${CA}`, /no PRIVATE KEY/],
    ['empty', '', /no CERTIFICATE/],
    ['encrypted key', `${CERT}${block('ENCRYPTED PRIVATE KEY', 'S0VZ')}`, /encrypted/],
    ['two keys', `${CERT}${KEY}${KEY}`, /more than one/],
    ['mismatched END', '-----BEGIN CERTIFICATE-----\nQQ==\n-----END PRIVATE KEY-----\n', /no CERTIFICATE/],
  ]
  for (const [name, pem, message] of cases) {
    t.throws(() => parseBundle(pem, '/home/me/laptop.pem'), { code: 'PL_ERR_TLS_FILE', message }, name)
    t.throws(() => parseBundle(pem, '/home/me/laptop.pem'), { message: /\/home\/me\/laptop\.pem/ }, `${name} names the file`)
  }
  t.end()
})
