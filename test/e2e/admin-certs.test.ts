// The admin certificates API (GET /api/certs, POST /api/certs/:serial/revoke). Its certificate
// store loads node-forge only when called, so a serving relay does not carry it until then.
import t from 'tap'
import { initPki, issueCert } from './harness/pki.js'
import { startRelay } from './harness/processes.js'

const pki = await initPki(t)
const laptop = await issueCert(pki, 'laptop')
const phone = await issueCert(pki, 'phone')
const relay = await startRelay(t, { extra: { pki: pki.dir } })

async function admin(path: string, method = 'GET'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${relay.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${relay.adminToken}` } })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

t.test('lists the issued certificates, revokes one by serial, lists it as revoked', async t => {
  const before = await admin('/api/certs')
  t.equal(before.status, 200)
  t.equal(before.body['pki'], true)
  const listed = (before.body['certs'] as Array<{ name: string; serial: string; revoked: boolean }>).map(c => [c.name, c.serial, c.revoked])
  t.same(listed.sort(), [['laptop', laptop.serial, false], ['phone', phone.serial, false]].sort())

  const revoked = await admin(`/api/certs/${phone.serial}/revoke`, 'POST')
  t.equal(revoked.status, 200)
  t.same(revoked.body['revoked'], [phone.serial])

  const after = await admin('/api/certs')
  const state = Object.fromEntries((after.body['certs'] as Array<{ name: string; revoked: boolean }>).map(c => [c.name, c.revoked]))
  t.same(state, { laptop: false, phone: true })
})

t.test('an unknown serial is 404 PL_ERR_PKI_UNKNOWN_CERT; a malformed one 404 PL_ERR_NOT_FOUND', async t => {
  const unknown = await admin('/api/certs/abcdef0123/revoke', 'POST')
  t.equal(unknown.status, 404)
  t.equal(unknown.body['code'], 'PL_ERR_PKI_UNKNOWN_CERT')
  const malformed = await admin('/api/certs/not-a-serial/revoke', 'POST')
  t.equal(malformed.status, 404)
  t.equal(malformed.body['code'], 'PL_ERR_NOT_FOUND')
})
