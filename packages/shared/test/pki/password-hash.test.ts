import { scryptSync } from 'node:crypto'
import t from 'tap'
import { hashPassword, isPasswordHash, parsePasswordHash, verifyPassword } from '../../src/pki/password-hash.js'

t.test('hashPassword makes scrypt:N:r:p:salt:hash that verifyPassword accepts', async (t) => {
  const hash = await hashPassword('correct horse')
  t.match(hash, /^scrypt:32768:8:1:[A-Za-z0-9+/]{22}==:[A-Za-z0-9+/]{43}=$/)
  t.equal(await verifyPassword('correct horse', hash), true)
  t.equal(await verifyPassword('correct horsf', hash), false)
  t.equal(await verifyPassword('', hash), false)
  t.not(await hashPassword('correct horse'), hash, 'fresh salt every time')
})

t.test('other in-bounds parameters verify too (hashes made elsewhere)', async (t) => {
  const salt = Buffer.from('0123456789abcdef')
  const key = scryptSync('pw', salt, 32, { N: 1024, r: 8, p: 1 })
  const hash = `scrypt:1024:8:1:${salt.toString('base64')}:${key.toString('base64')}`
  t.equal(await verifyPassword('pw', hash), true)
  t.equal(await verifyPassword('pW', hash), false)
})

t.test('malformed or out-of-bounds hashes are rejected without running scrypt', async (t) => {
  const salt = Buffer.alloc(16, 1).toString('base64')
  const key = Buffer.alloc(32, 2).toString('base64')
  const bad = [
    '', 'plain', `bcrypt:16384:8:1:${salt}:${key}`, `scrypt:16384:8:1:${salt}`, `scrypt:16384:8:1:${salt}:${key}:x`,
    `scrypt:1000:8:1:${salt}:${key}`, // N not a power of two
    `scrypt:512:8:1:${salt}:${key}`, // N too small
    `scrypt:${2 ** 20}:8:1:${salt}:${key}`, // N too large: memory DoS from a hostile agent
    `scrypt:131072:16:1:${salt}:${key}`, // 256 MiB
    `scrypt:16384:100:1:${salt}:${key}`, `scrypt:16384:8:99:${salt}:${key}`,
    `scrypt:016384:8:1:${salt}:${key}`, `scrypt:16384:8:1:!!!!:${key}`, `scrypt:16384:8:1:${salt}:${key.slice(0, 8)}`,
    `scrypt:16384:8:1:AAAA:${key}`, // 3-byte salt
    `scrypt:16384:8:1:${salt}:${key}${'A'.repeat(600)}`,
  ]
  for (const hash of bad) {
    t.equal(isPasswordHash(hash), false, hash.slice(0, 60))
    t.equal(parsePasswordHash(hash), null)
    t.equal(await verifyPassword('pw', hash), false)
  }
  t.equal(isPasswordHash(`scrypt:16384:8:1:${salt}:${key}`), true)
  t.equal(isPasswordHash(`scrypt:16384:8:1:${salt.replace(/=+$/, '')}:${key.replace(/=+$/, '')}`), true, 'unpadded base64 is fine')
  t.equal(isPasswordHash(`scrypt:16384:8:1:${salt}:${key.slice(0, 41)}`), false, 'a length no base64 can have')
})
