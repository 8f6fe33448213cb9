import t from 'tap'
import type { AgentTunnel } from '@porchlight/shared/config'
import { localTarget, sameTunnel, toTunnelSpecs } from '../../src/tunnels/specs.js'

const tunnels: AgentTunnel[] = [
  { kind: 'http', id: 'blog', http: 'blog', to: 'http://127.0.0.1:80', host_header: 'blog.local', access: null },
  {
    kind: 'http', id: 'docs.example.org', http: 'docs.example.org', to: 'http://127.0.0.1:3000', host_header: null,
    access: { links: true, basic: { user: 'alice', password_hash: 'scrypt:x' }, allow_ips: ['203.0.113.0/24'], client_certs: false },
  },
  { kind: 'http', id: 'open', http: 'open', to: 'http://127.0.0.1:81', host_header: null, access: { links: true, basic: null, allow_ips: [], client_certs: false } },
  { kind: 'tcp', id: 'tcp:2222', tcp: 2222, to: { host: '127.0.0.1', port: 22 }, allow_ips: [], proxy_protocol: null },
  { kind: 'tcp', id: 'tcp:5432', tcp: 0, to: { host: '::1', port: 5432 }, allow_ips: ['10.0.0.0/8'], proxy_protocol: 'v2' },
  { kind: 'forward', id: 'forward:2525', forward: { host: '127.0.0.1', port: 2525 }, to: { host: 'smtp.example.com', port: 587 } },
]

t.test('publish specs: http and tcp only, defaults left out', async (t) => {
  t.same(toTunnelSpecs(tunnels, { connectionStreams: false }), [
    { id: 'blog', kind: 'http', host: 'blog' },
    { id: 'docs.example.org', kind: 'http', host: 'docs.example.org', access: { links: true, basic: { user: 'alice', password_hash: 'scrypt:x' }, allow_ips: ['203.0.113.0/24'], client_certs: false } },
    { id: 'open', kind: 'http', host: 'open', access: { links: true, client_certs: false } },
    { id: 'tcp:2222', kind: 'tcp', remote_port: 2222 },
    { id: 'tcp:5432', kind: 'tcp', allow_ips: ['10.0.0.0/8'], proxy_protocol: 'v2' },
  ])
})

t.test('connection-stream specs tell the relay the Host and path prefix to write', async (t) => {
  const withPath: AgentTunnel = { kind: 'http', id: 'app', http: 'app', to: 'http://[::1]:8080/app/', host_header: null, access: null }
  const badHost: AgentTunnel = { kind: 'http', id: 'odd', http: 'odd', to: 'http://127.0.0.1:80', host_header: 'has space', access: null }
  const specs = toTunnelSpecs([...tunnels, withPath, badHost])
  t.same(specs.filter((s) => s.kind === 'http').map((s) => [s.id, s.kind === 'http' ? s.origin : null]), [
    ['blog', { host: 'blog.local', path: '' }],
    ['docs.example.org', { host: '127.0.0.1:3000', path: '' }],
    ['open', { host: '127.0.0.1:81', path: '' }],
    ['app', { host: '[::1]:8080', path: '/app' }],
    // A Host the relay could not write keeps the per-request path (no origin).
    ['odd', undefined],
  ])
})

t.test('local targets as printed in Forwarding lines', async (t) => {
  t.same(tunnels.map(localTarget), ['http://127.0.0.1:80', 'http://127.0.0.1:3000', 'http://127.0.0.1:81', '127.0.0.1:22', '[::1]:5432', 'smtp.example.com:587'])
})

t.test('sameTunnel compares every field', async (t) => {
  const fwd = tunnels[5]!
  t.equal(sameTunnel(fwd, { ...fwd }), true)
  t.equal(sameTunnel(fwd, { ...fwd, to: { host: 'smtp.example.com', port: 465 } } as AgentTunnel), false)
})
