import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { decodeEnrolmentCode, encodeEnrolmentCode, ENROL_PREFIX, formatFingerprint, type EnrolmentCode } from '../../src/enrol/code.js'

const base: EnrolmentCode = {
  relay: 'wss://tunnel.example.com:7443',
  agent: 'laptop',
  token: 'x'.repeat(43),
  caSha256: 'ab'.repeat(32),
  clientCert: null,
}

t.test('a code round-trips and stays short without a certificate', async (t) => {
  const code = encodeEnrolmentCode(base)
  t.ok(code.startsWith(ENROL_PREFIX))
  t.match(code, /^pl1_[A-Za-z0-9_-]+$/, 'one shell word, no quoting needed')
  t.ok(code.length < 220, `short enough to read over the phone in a pinch (${code.length} chars)`)
  t.same(decodeEnrolmentCode(` ${code}\n`), base)
  t.same(decodeEnrolmentCode(encodeEnrolmentCode({ ...base, caSha256: null, relay: 'ws://127.0.0.1:7443' })), { ...base, caSha256: null, relay: 'ws://127.0.0.1:7443' })
})

t.test('the client certificate and key travel as PEM and come back the same', async (t) => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
  const cert = `-----BEGIN CERTIFICATE-----\n${Buffer.alloc(900, 7).toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`
  const withCert = { ...base, clientCert: { cert, key: privateKey } }
  const code = encodeEnrolmentCode(withCert)
  t.ok(code.length < 4000, `${code.length} chars with an RSA-2048 key`)
  t.same(decodeEnrolmentCode(code), withCert)
})

t.test('every way a code goes wrong gets its own reason', async (t) => {
  const code = encodeEnrolmentCode(base)
  const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)
  const cases: Array<[string, RegExp]> = [
    ['', /does not start with pl1_/],
    [code.slice(4), /does not start with pl1_/],
    ['porchlight login ' + code, /does not start with pl1_/],
    [code.replace('pl1_', 'pl2_'), /version 2 is newer .* update the agent/],
    [code.slice(0, 40), /damaged \(checksum mismatch\)/],
    [flip(code, 30), /damaged \(checksum mismatch\)/],
    [flip(code, code.length - 2), /damaged \(checksum mismatch\)/],
    [`${code.slice(0, 30)} ${code.slice(30)}`, /characters that are not in a code/],
    ['pl1_', /damaged/],
  ]
  for (const [input, reason] of cases) {
    t.throws(() => decodeEnrolmentCode(input), { code: 'PL_ERR_ENROL_CODE', message: reason }, JSON.stringify(input.slice(0, 50)))
  }
})

t.test('fingerprints are shown the way openssl prints them', async (t) => {
  t.equal(formatFingerprint('0a1b'), '0A:1B')
})
