// Byte plumbing and address policy helpers shared by the relay and the agent.
export { pipeBoth, PrematureCloseError } from './pipe-both.js'
export { encodeProxyV1, encodeProxyV2, parseProxyHeader, PROXY_V2_SIGNATURE, type Endpoint, type ProxyHeader } from './proxy-protocol.js'
export {
  parseIp, parseCanonicalIp, normalizeIp, normalizePeerIp, parseCidr, cidrContains, ipRange, isSpecialAddress, isLoopbackOrPrivate,
  isLoopbackAddress, type IpAddress, type Cidr,
} from './ip.js'
export { classifyHost, normalizeHostname, type HostKind } from './host.js'
export { parseCidrList, ipAllowed } from './allow-list.js'
export { dialTcp, DialAbortedError, type DialTarget, type DialOptions } from './dial.js'
export { bridgeSocketToStream, type BridgeOptions } from './bridge.js'
export { httpParsers, type HttpParser, type HttpParserModule } from './http-parser.js'
