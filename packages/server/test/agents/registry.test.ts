// Ownership rules of the registry (issue 10): a hostname has one owner session; other processes
// of the same agent may take it only once that owner is gone; other agents never can, even while
// the owner is offline; a close releases only the closing session's routes.
import t from 'tap'
import { PassThrough } from 'node:stream'
import { Registry, type SessionRef } from '../../src/agents/registry.js'

class FakeSession implements SessionRef {
  static next = 0
  readonly id = `s${FakeSession.next++}`
  isClosed = false
  constructor(readonly agent: string, readonly instance: string) {}
  openStream(): PassThrough { return new PassThrough() }
}

const route = (host: string, tunnelId = host) => ({ host, tunnelId, access: null })

t.test('sessions are kept per (agent, instance); only the same instance is replaced', (t) => {
  const reg = new Registry<FakeSession>()
  const service = new FakeSession('laptop', 'svc')
  const quick = new FakeSession('laptop', 'quick')
  t.equal(reg.attach(service), undefined)
  t.equal(reg.attach(quick), undefined, 'another process of the same agent replaces nothing')
  t.same(reg.sessionsOf('laptop').map((s) => s.id), [service.id, quick.id])
  const serviceAgain = new FakeSession('laptop', 'svc')
  t.equal(reg.attach(serviceAgain), service, 'the same instance reconnecting replaces its stale session')
  t.same(reg.sessionsOf('laptop').map((s) => s.id), [serviceAgain.id, quick.id])
  t.equal(reg.session('laptop', 'svc'), serviceAgain)
  reg.detach(service) // the replaced session closes late: it must not unregister its successor
  t.equal(reg.session('laptop', 'svc'), serviceAgain)
  t.end()
})

t.test('a second claim on a live owner\'s host is refused; once the owner is gone it may be taken', (t) => {
  const reg = new Registry<FakeSession>()
  const service = new FakeSession('laptop', 'svc')
  const quick = new FakeSession('laptop', 'quick')
  const other = new FakeSession('desktop', 'x')
  reg.attach(service); reg.attach(quick); reg.attach(other)
  reg.setRoutes(service, [route('blog.test'), route('wiki.test')])
  t.equal(reg.claimRefusal('blog.test', quick), 'other-instance')
  t.equal(reg.claimRefusal('blog.test', other), 'other-agent')
  t.equal(reg.claimRefusal('blog.test', service), null, 'the owner may publish it again')
  t.equal(reg.claimRefusal('free.test', quick), null)

  reg.setRoutes(quick, [route('quick.test')])
  t.same(reg.routesOf('laptop').map((r) => [r.host, r.instance]).sort(), [['blog.test', 'svc'], ['quick.test', 'quick'], ['wiki.test', 'svc']], 'a publish replaces only the publisher\'s own routes')

  service.isClosed = true
  reg.detach(service)
  t.equal(reg.route('blog.test')?.session, null, 'offline: visitors get 503')
  t.equal(reg.route('quick.test')?.session, quick, 'the other process keeps serving')
  t.equal(reg.claimRefusal('blog.test', other), 'other-agent', 'still reserved against other agents while offline')
  t.equal(reg.claimRefusal('blog.test', quick), null, 'another process of the same agent may take it over')
  reg.setRoutes(quick, [route('quick.test'), route('blog.test')])
  t.equal(reg.route('blog.test')?.instance, 'quick')
  t.equal(reg.route('blog.test')?.session, quick)
  t.equal(reg.route('wiki.test')?.instance, 'svc', 'the gone process\'s other route stays reserved for it')

  const serviceBack = new FakeSession('laptop', 'svc')
  reg.attach(serviceBack)
  t.equal(reg.claimRefusal('blog.test', serviceBack), 'other-instance', 'the returning process finds blog taken by a live session')
  reg.setRoutes(serviceBack, [route('wiki.test')])
  t.equal(reg.route('wiki.test')?.session, serviceBack, 'and gets its own route back')
  t.equal(reg.route('blog.test')?.session, quick, 'without touching the other process\'s routes')
  t.end()
})

t.test('a close releases only its own routes; forgetting an agent frees its names for others', (t) => {
  const reg = new Registry<FakeSession>()
  const a = new FakeSession('laptop', 'one')
  const b = new FakeSession('laptop', 'two')
  reg.attach(a); reg.attach(b)
  reg.setRoutes(a, [route('a.test')])
  reg.setRoutes(b, [route('b.test')])
  a.isClosed = true
  reg.detach(a)
  t.equal(reg.route('a.test')?.session, null)
  t.equal(reg.route('b.test')?.session, b)
  t.equal(reg.sessionsOf('laptop').length, 1)
  const dropped = reg.dropRoutes((r) => r.host !== 'a.test')
  t.same(dropped, ['a.test'])
  reg.forgetAgent('laptop')
  t.equal(reg.routeCount, 0)
  t.equal(reg.claimRefusal('b.test', new FakeSession('desktop', 'x')), null, 'a forgotten agent\'s name is free')
  t.end()
})
