import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadClusterKeys, seal, unseal } from '../../src/cluster/keys.js'
import { signPeerRequest, verifyPeerRequest } from '../../src/cluster/peer-auth.js'

function keysIn(dir: string, secret: string) {
  const file = join(dir, `${secret.slice(0, 4)}.secret`)
  writeFileSync(file, `${secret}\n`)
  return loadClusterKeys(file)
}

t.test('keys: one secret, a key per use; sealed values open only with the same secret', (t) => {
  const dir = t.testdir()
  const a = keysIn(dir, 'a'.repeat(64))
  const b = keysIn(dir, 'b'.repeat(64))
  t.notSame(a.peer, a.seal, 'peer and seal keys differ')
  t.notSame(a.seal, a.links, 'seal and link keys differ')
  t.notSame(a.acme, a.seal, 'the ACME state has its own sealing key')
  t.same(keysIn(dir, 'a'.repeat(64)).seal, a.seal, 'derivation is stable')
  const sealed = seal(a.seal, '{"id":"r1"}')
  t.equal(unseal(a.seal, sealed), '{"id":"r1"}')
  t.not(seal(a.seal, '{"id":"r1"}'), sealed, 'a fresh nonce every time')
  t.equal(unseal(b.seal, sealed), null, 'another cluster secret cannot open it')
  const raw = Buffer.from(sealed, 'base64url')
  raw[raw.length - 1]! ^= 1
  t.equal(unseal(a.seal, raw.toString('base64url')), null, 'a flipped bit is refused')
  t.equal(unseal(a.seal, 'short'), null)
  t.throws(() => loadClusterKeys(join(dir, 'missing')), { code: 'PL_ERR_CONFIG_SECRET' })
  t.end()
})

t.test('peer requests: signed over sender, time, request line, Host, visitor and scheme', (t) => {
  const { peer } = keysIn(t.testdir(), 'c'.repeat(64))
  const now = 1_800_000_000_000
  const req = { method: 'GET', host: 'one.example.com', url: '/a?b=1' }
  const headers = Object.fromEntries(signPeerRequest(peer, { from: 'r2', visitor: '203.0.113.7', proto: 'https' }, req, now))
  const verify = (h: Record<string, string>, r = req, at = now, known = (id: string) => id !== 'r1') => verifyPeerRequest(peer, { ...h, host: r.host }, { method: r.method, url: r.url }, known, at)
  t.same(verify(headers), { from: 'r2', visitor: '203.0.113.7', proto: 'https' })
  t.same(verify(headers, req, now + 29_000), { from: 'r2', visitor: '203.0.113.7', proto: 'https' }, 'within the 30 s window')
  t.same(verify(headers, req, now + 31_000), { refused: 'peer clock off by more than 30 s (or a replay)' })
  t.same(verify({ ...headers, 'x-porchlight-peer-visitor': '198.51.100.1' }), { refused: 'bad peer signature (another cluster secret?)' }, 'the visitor address is covered')
  t.same(verify(headers, { ...req, url: '/other' }), { refused: 'bad peer signature (another cluster secret?)' }, 'the path is covered')
  t.same(verify(headers, { ...req, host: 'two.example.com' }), { refused: 'bad peer signature (another cluster secret?)' }, 'the Host is covered')
  t.same(verify(headers, req, now, () => false), { refused: 'unknown member r2' })
  const { 'x-porchlight-peer-sig': _sig, ...unsigned } = headers
  t.same(verify(unsigned), { refused: 'missing peer headers' })
  const other = keysIn(t.testdir(), 'd'.repeat(64))
  t.same(verifyPeerRequest(other.peer, { ...headers, host: req.host }, req, () => true, now), { refused: 'bad peer signature (another cluster secret?)' }, 'another secret')
  t.end()
})
