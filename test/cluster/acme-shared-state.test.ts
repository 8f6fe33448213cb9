import { randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import t from 'tap'
import { Redis } from 'ioredis'
import { AcmeSharedState } from '../../packages/server/src/acme/shared-state.js'
import { startRedis } from './harness.js'

// The cluster's ACME state against a real redis-server: values sealed and bound to their key, the
// order lock exclusive and only released by its holder, the account key offered once.
const PEM_KEY = Buffer.from('-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n')
const PEM_CERT = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n')

t.test('sealed, key-bound values; one lock holder; one account key', async (t) => {
  const redis = await startRedis(t)
  // As the relay's client: no offline queue, so a command without Redis fails at once.
  const client = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1000 })
  client.on('error', () => { /* Redis is killed at the end */ })
  t.teardown(() => client.disconnect())
  await new Promise((resolve) => client.once('ready', resolve))
  const key = randomBytes(32)
  const prefix = 'porchlight:acme:0123456789abcdef:'
  const r1 = new AcmeSharedState({ redis: client, key, prefix, member: 'r1' })
  const r2 = new AcmeSharedState({ redis: client, key, prefix, member: 'r2' })
  const stranger = new AcmeSharedState({ redis: client, key: randomBytes(32), prefix, member: 'x' })

  await r1.saveCertificate('a.test', PEM_CERT, PEM_KEY, Date.now() + 3_600_000)
  t.same(await r2.readCertificate('a.test'), { cert: PEM_CERT, key: PEM_KEY }, 'another member reads it')
  t.equal(await stranger.readCertificate('a.test'), null, 'another cluster secret cannot open it')
  const raw = await client.get(`${prefix}cert:a.test`)
  t.notMatch(raw ?? '', /BEGIN|PRIVATE/, 'not stored in clear')
  const ttl = await client.pttl(`${prefix}cert:a.test`)
  t.ok(ttl > 3_600_000 && ttl <= 3_600_000 + 86_400_000, `expires a day after the certificate (${ttl} ms)`)
  // A value copied under another name's key does not open there.
  await client.set(`${prefix}cert:b.test`, raw ?? '')
  t.equal(await r2.readCertificate('b.test'), null, 'a value moved to another key is refused')
  await client.set(`${prefix}cert:c.test`, 'garbage')
  t.equal(await r2.readCertificate('c.test'), null, 'garbage is refused')

  const lock = await r1.lock('a.test')
  t.ok(lock, 'r1 holds the lock')
  t.equal(await r2.lock('a.test'), null, 'r2 cannot take it while r1 holds it')
  const lockTtl = await client.pttl(`${prefix}lock:a.test`)
  t.ok(lockTtl > 100_000 && lockTtl <= 120_000, `the lock expires by itself (${lockTtl} ms)`)
  // Expired and taken by r2 meanwhile: r1's late release must not free r2's lock.
  await client.del(`${prefix}lock:a.test`)
  const taken = await r2.lock('a.test')
  t.ok(taken, 'r2 takes it once it is gone')
  await lock!.release()
  t.match(await client.get(`${prefix}lock:a.test`), /^r2:[0-9a-f]{24}$/, 'r1\'s release left r2\'s lock alone')
  await taken!.release()
  t.equal(await client.get(`${prefix}lock:a.test`), null, 'the holder releases it')

  const first = await r1.offerAccountKey(Buffer.from('account-one'))
  const second = await r2.offerAccountKey(Buffer.from('account-two'))
  t.equal(first.toString(), 'account-one')
  t.equal(second.toString(), 'account-one', 'the second offer gets the key already there')

  await r1.putHttp('tok_EN-1', 'a.test', 'tok_EN-1.thumb')
  t.same(await r2.getHttp('tok_EN-1'), { host: 'a.test', keyAuthorization: 'tok_EN-1.thumb' })
  await r1.deleteHttp('tok_EN-1')
  t.equal(await r2.getHttp('tok_EN-1'), null, 'cleaned up')

  await r1.saveBackoff('a.test', { count: 2, retryAt: 123 })
  t.same(await r2.readBackoff('a.test'), { count: 2, retryAt: 123 })
  await r2.clearBackoff('a.test')
  t.equal(await r1.readBackoff('a.test'), null)

  const dump = execFileSync('redis-cli', ['-p', String(redis.port), '--raw', 'GET', `${prefix}account`], { encoding: 'utf8' })
  t.notMatch(dump, /account-one/, 'the account key is sealed too')

  // Redis gone: every call rejects (the manager then waits and logs; it never orders without the lock).
  await redis.handle.kill('SIGKILL')
  await t.rejects(r1.lock('z.test'))
  await t.rejects(r1.readCertificate('a.test'))
})
