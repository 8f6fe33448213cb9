import ipaddr from 'ipaddr.js'
import { parseIp, type IpAddress } from './ip.js'

/**
 * HAProxy PROXY protocol headers (v1 text, v2 binary), written by the agent before any payload so
 * the local service sees the visitor's address. IPv4-mapped IPv6 is folded to IPv4; when the two
 * ends are of different families both are sent as IPv6. Unparseable addresses give UNKNOWN (v1)
 * or AF_UNSPEC (v2), which receivers treat as "use the real connection's addresses".
 */
export interface Endpoint {
  address: string
  port: number
}

export interface ProxyHeader {
  version: 1 | 2
  /** v2 only: PROXY (relayed connection) or LOCAL (health check); v1 is always PROXY. */
  command: 'PROXY' | 'LOCAL'
  family: 'TCP4' | 'TCP6' | 'UNKNOWN'
  src: Endpoint | null
  dst: Endpoint | null
  /** Bytes the header occupies at the start of the buffer. */
  length: number
}

/** 12-byte v2 signature: \r\n\r\n\0\r\nQUIT\n */
export const PROXY_V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')
const V1_MAX_BYTES = 107
const V2_FIXED_BYTES = 16

export function encodeProxyV1(src: Endpoint, dst: Endpoint): Buffer {
  const pair = addressPair(src, dst)
  if (pair === null) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1')
  const [s, d] = pair
  const family = s.kind() === 'ipv4' ? 'TCP4' : 'TCP6'
  return Buffer.from(`PROXY ${family} ${s.toString()} ${d.toString()} ${src.port} ${dst.port}\r\n`, 'latin1')
}

export function encodeProxyV2(src: Endpoint, dst: Endpoint): Buffer {
  const pair = addressPair(src, dst)
  const head = Buffer.alloc(V2_FIXED_BYTES)
  PROXY_V2_SIGNATURE.copy(head, 0)
  head[12] = 0x21 // version 2, command PROXY
  if (pair === null) {
    head[13] = 0x00 // AF_UNSPEC, UNSPEC: no address block
    head.writeUInt16BE(0, 14)
    return head
  }
  const [s, d] = pair
  const srcBytes = s.toByteArray()
  const dstBytes = d.toByteArray()
  head[13] = s.kind() === 'ipv4' ? 0x11 : 0x21 // AF_INET or AF_INET6, STREAM
  const body = Buffer.alloc(srcBytes.length * 2 + 4)
  Buffer.from(srcBytes).copy(body, 0)
  Buffer.from(dstBytes).copy(body, srcBytes.length)
  body.writeUInt16BE(src.port, srcBytes.length * 2)
  body.writeUInt16BE(dst.port, srcBytes.length * 2 + 2)
  head.writeUInt16BE(body.length, 14)
  return Buffer.concat([head, body])
}

/**
 * Parses a v1 or v2 header at the start of `buf`. Returns null when `buf` does not start with a
 * PROXY header or holds only part of one; throws on a malformed header. (Used by tests and tools.)
 */
export function parseProxyHeader(buf: Buffer): ProxyHeader | null {
  if (buf.length >= PROXY_V2_SIGNATURE.length && buf.subarray(0, PROXY_V2_SIGNATURE.length).equals(PROXY_V2_SIGNATURE)) {
    return parseV2(buf)
  }
  if (buf.subarray(0, 6).toString('latin1') === 'PROXY ') return parseV1(buf)
  return null
}

function parseV1(buf: Buffer): ProxyHeader | null {
  const end = buf.subarray(0, V1_MAX_BYTES + 1).indexOf('\r\n', 0, 'latin1')
  if (end === -1) {
    if (buf.length > V1_MAX_BYTES) throw new Error('PROXY v1 header longer than 107 bytes')
    return null
  }
  const parts = buf.subarray(0, end).toString('latin1').split(' ')
  const length = end + 2
  if (parts[1] === 'UNKNOWN') return { version: 1, command: 'PROXY', family: 'UNKNOWN', src: null, dst: null, length }
  const [, family, srcAddr, dstAddr, srcPort, dstPort] = parts
  if (parts.length !== 6 || (family !== 'TCP4' && family !== 'TCP6')) throw new Error('malformed PROXY v1 header')
  const src = { address: checkAddress(srcAddr, family), port: checkPort(srcPort) }
  const dst = { address: checkAddress(dstAddr, family), port: checkPort(dstPort) }
  return { version: 1, command: 'PROXY', family, src, dst, length }
}

function parseV2(buf: Buffer): ProxyHeader | null {
  if (buf.length < V2_FIXED_BYTES) return null
  const verCmd = buf[12] ?? 0
  const famProto = buf[13] ?? 0
  const bodyBytes = buf.readUInt16BE(14)
  if (verCmd >> 4 !== 2) throw new Error('unsupported PROXY v2 version')
  const cmd = verCmd & 0x0f
  if (cmd !== 0 && cmd !== 1) throw new Error('unsupported PROXY v2 command')
  const length = V2_FIXED_BYTES + bodyBytes
  if (buf.length < length) return null
  const command = cmd === 1 ? 'PROXY' : 'LOCAL'
  const body = buf.subarray(V2_FIXED_BYTES, length)
  if (famProto === 0x11 || famProto === 0x21) {
    const width = famProto === 0x11 ? 4 : 16
    if (body.length < width * 2 + 4) throw new Error('PROXY v2 address block too short')
    const src = { address: bytesToText(body.subarray(0, width)), port: body.readUInt16BE(width * 2) }
    const dst = { address: bytesToText(body.subarray(width, width * 2)), port: body.readUInt16BE(width * 2 + 2) }
    return { version: 2, command, family: famProto === 0x11 ? 'TCP4' : 'TCP6', src, dst, length }
  }
  return { version: 2, command, family: 'UNKNOWN', src: null, dst: null, length }
}

/** Both endpoints parsed and brought to one family (IPv4 lifted to mapped IPv6 if they differ). */
function addressPair(src: Endpoint, dst: Endpoint): [IpAddress, IpAddress] | null {
  const s = parseIp(src.address)
  const d = parseIp(dst.address)
  if (s === null || d === null || !validPort(src.port) || !validPort(dst.port)) return null
  if (s.kind() === d.kind()) return [s, d]
  return [liftToV6(s), liftToV6(d)]
}

function liftToV6(ip: IpAddress): ipaddr.IPv6 {
  return ip instanceof ipaddr.IPv4 ? ip.toIPv4MappedAddress() : ip
}

function bytesToText(bytes: Buffer): string {
  return ipaddr.fromByteArray([...bytes]).toString()
}

function checkAddress(text: string | undefined, family: 'TCP4' | 'TCP6'): string {
  const valid = text !== undefined && (family === 'TCP4' ? ipaddr.IPv4.isValidFourPartDecimal(text) : ipaddr.IPv6.isValid(text))
  if (!valid) throw new Error(`bad ${family} address in PROXY v1 header`)
  return text
}

function checkPort(text: string | undefined): number {
  if (text === undefined || !/^(0|[1-9][0-9]{0,4})$/.test(text) || Number(text) > 65535) throw new Error('bad port in PROXY v1 header')
  return Number(text)
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65535
}
