import t from 'tap'
import { requestHeadersForOrigin, responseHeadersForVisitor } from '../../src/visitors/headers.js'

const fwd = { clientIp: '127.0.0.1', peerIp: '127.0.0.1', trustedChain: null, proto: 'http' as const, host: 'a.test' }

t.test('visitor-sent forwarding headers are dropped and the relay sets its own (SECURITY B12)', async (t) => {
  const out = requestHeadersForOrigin([
    'Host', 'a.test', 'X-Forwarded-For', '1.2.3.4', 'X-Real-IP', '1.2.3.4', 'Forwarded', 'for=1.2.3.4',
    'X-Forwarded-Host', 'evil', 'X-Forwarded-Proto', 'https', 'Connection', 'close, X-Forwarded-For, X-Secret',
    'X-Secret', 's', 'Keep-Alive', '5', 'TE', 'trailers', 'Proxy-Authorization', 'Basic x', 'Proxy-Connection', 'x',
    'Transfer-Encoding', 'chunked', 'Accept', '*/*',
  ], fwd, { upgrade: false, dropAuthorization: false, cookie: undefined })
  t.same(out, [
    ['Host', 'a.test'], ['Accept', '*/*'],
    ['X-Forwarded-For', '127.0.0.1'], ['X-Forwarded-Proto', 'http'], ['X-Forwarded-Host', 'a.test'],
  ])
})

t.test('trusted proxy chain is appended; cookie and authorization are replaced as told', async (t) => {
  const out = requestHeadersForOrigin(['Host', 'a.test', 'Authorization', 'Basic abc', 'Cookie', 'porchlight_access=x; a=1'],
    { ...fwd, clientIp: '10.0.0.1', trustedChain: '10.0.0.1' }, { upgrade: false, dropAuthorization: true, cookie: 'a=1' })
  t.same(out, [['Host', 'a.test'], ['Cookie', 'a=1'], ['X-Forwarded-For', '10.0.0.1, 127.0.0.1'], ['X-Forwarded-Proto', 'http'], ['X-Forwarded-Host', 'a.test']])
})

t.test('upgrade keeps Upgrade and sets Connection: Upgrade', async (t) => {
  const out = requestHeadersForOrigin(['Host', 'a.test', 'Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k'], fwd, { upgrade: true, dropAuthorization: false, cookie: undefined })
  t.same(out.slice(0, 4), [['Host', 'a.test'], ['Upgrade', 'websocket'], ['Sec-WebSocket-Key', 'k'], ['Connection', 'Upgrade']])
})

t.test('responses lose hop-by-hop headers and relay cookies (SECURITY C4)', async (t) => {
  const out = responseHeadersForVisitor([
    ['Content-Type', 'text/plain'], ['Transfer-Encoding', 'chunked'], ['Connection', 'keep-alive'],
    ['Set-Cookie', '__Host-porchlight_access=attacker; Path=/'], ['Set-Cookie', 'porchlight_access=x'], ['Set-Cookie', 'app=1'],
  ], { upgrade: false })
  t.same(out, ['Content-Type', 'text/plain', 'Set-Cookie', 'app=1'])
})
