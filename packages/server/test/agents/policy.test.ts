import t from 'tap'
import { decideHost, resolveTunnelHost } from '../../src/agents/policy.js'

const reserved = new Set(['localhost', 'tunnel.test'])

t.test('bare names live under the domain; full names stay', async (t) => {
  t.equal(resolveTunnelHost('blog', 'tunnel.test'), 'blog.tunnel.test')
  t.equal(resolveTunnelHost('Blog.Example.ORG.', 'tunnel.test'), 'blog.example.org')
})

t.test('only exact matches of allowed patterns are publishable (SECURITY A15)', async (t) => {
  const allowed = ['a.test', '*.laptop.tunnel.test']
  t.same(decideHost('a.test', 'tunnel.test', allowed, reserved), { ok: true, host: 'a.test' })
  t.same(decideHost('A.TEST.', 'tunnel.test', allowed, reserved), { ok: true, host: 'a.test' })
  t.same(decideHost('x.laptop.tunnel.test', 'tunnel.test', allowed, reserved), { ok: true, host: 'x.laptop.tunnel.test' })
  for (const bad of ['*.test', 'test', 'a.test:443', 'a.test\r\nX: y', ' a.test', '', 'x'.repeat(300) + '.test', 'b.test']) {
    t.equal(decideHost(bad, 'tunnel.test', allowed, reserved).ok, false, JSON.stringify(bad.slice(0, 40)))
  }
  t.same(decideHost('tunnel.test', 'tunnel.test', ['*.test', 'tunnel.test'], reserved), { ok: false, code: 'PL_ERR_POLICY_HOST_DENIED', host: 'tunnel.test' })
})
