import t from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { withSharedAgentsEndpoint } from '../../src/agents/shared-endpoint.js'
import type { createVisitorHandler } from '../../src/visitors/http.js'

const ports = new Set([80, 443, 8443])

function req(rawHeaders: string[], url: string, method = 'GET'): IncomingMessage {
  const headers: Record<string, string> = {}
  for (let i = 0; i < rawHeaders.length; i += 2) headers[rawHeaders[i]!.toLowerCase()] ??= rawHeaders[i + 1]!
  return { rawHeaders, headers, url, method, socket: { remoteAddress: '127.0.0.1', remotePort: 1 } } as unknown as IncomingMessage
}

/** Which handler each request reached: 'agents' or 'visitors', for upgrades and plain requests alike. */
function dispatcher(): { upgrade(r: IncomingMessage): string; request(r: IncomingMessage): string } {
  let seen = ''
  const visitors = {
    onRequest: () => { seen = 'visitors' },
    onUpgrade: () => { seen = 'visitors' },
    onConnect: () => undefined,
    onClientError: () => undefined,
  } as unknown as ReturnType<typeof createVisitorHandler>
  const agents = { onRequest: () => { seen = 'agents' }, onUpgrade: () => { seen = 'agents' } }
  const handler = withSharedAgentsEndpoint(visitors, agents, { domain: () => 'tunnel.example.com', listenerPorts: () => ports })
  return {
    upgrade: (r) => { seen = ''; handler.onUpgrade(r, {} as Socket, Buffer.alloc(0)); return seen },
    request: (r) => { seen = ''; handler.onRequest(r, {} as ServerResponse); return seen },
  }
}

t.test('only the exact path on the relay\'s own domain is the agents\'', async (t) => {
  const d = dispatcher()
  const cases: Array<[string, string[], string, string]> = [
    ['exact', ['Host', 'tunnel.example.com'], '/_porchlight/connect', 'agents'],
    ['default port in Host', ['Host', 'tunnel.example.com:443'], '/_porchlight/connect', 'agents'],
    ['listener port in Host', ['Host', 'Tunnel.Example.com.:8443'], '/_porchlight/connect', 'agents'],
    ['a published site\'s Host', ['Host', 'blog.tunnel.example.com'], '/_porchlight/connect', 'visitors'],
    ['a look-alike Host', ['Host', 'tunnel.example.com.evil.test'], '/_porchlight/connect', 'visitors'],
    ['a port no listener has', ['Host', 'tunnel.example.com:9999'], '/_porchlight/connect', 'visitors'],
    ['duplicate Host', ['Host', 'tunnel.example.com', 'Host', 'tunnel.example.com'], '/_porchlight/connect', 'visitors'],
    ['no Host', [], '/_porchlight/connect', 'visitors'],
    ['a query', ['Host', 'tunnel.example.com'], '/_porchlight/connect?x=1', 'visitors'],
    ['a trailing slash', ['Host', 'tunnel.example.com'], '/_porchlight/connect/', 'visitors'],
    ['another case', ['Host', 'tunnel.example.com'], '/_Porchlight/connect', 'visitors'],
    ['absolute form', ['Host', 'tunnel.example.com'], 'https://tunnel.example.com/_porchlight/connect', 'visitors'],
    ['another path on the domain', ['Host', 'tunnel.example.com'], '/agent', 'visitors'],
  ]
  for (const [name, headers, url, want] of cases) {
    t.equal(d.upgrade(req(headers, url)), want, `upgrade: ${name}`)
    t.equal(d.request(req(headers, url)), want, `request: ${name}`)
  }
})
