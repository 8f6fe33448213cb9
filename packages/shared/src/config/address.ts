import { isIP, isIPv4, isIPv6 } from 'node:net'
import { normalizeHostname } from './hostname.js'
import { describe } from './issues.js'

/** A host and a TCP port. `host` is an IP literal (IPv6 without brackets) or a lowercase hostname. */
export interface Address {
  host: string
  port: number
}

const WILDCARD_HOST = '0.0.0.0'
const DEFAULT_LOCAL_HOST = '127.0.0.1'
const PORT_DIGITS = /^[0-9]{1,5}$/

/**
 * Parses "host:port" as used by listeners: "127.0.0.1:7070", "[::1]:80", "example.com:443", and
 * ":80" meaning every interface (0.0.0.0). Port 0 asks the OS for an ephemeral port.
 * Throws an Error whose message says what is wrong.
 */
export function parseAddress(text: string): Address {
  if (typeof text !== 'string') throw new Error('expected "host:port"')
  if (text.length === 0) throw new Error('expected "host:port", got an empty string')
  if (text.trim() !== text || /\s/.test(text)) throw new Error(`${JSON.stringify(text)} contains spaces`)
  let host: string
  let portText: string
  if (text.startsWith('[')) {
    const end = text.indexOf(']')
    if (end < 0) throw new Error(`missing "]" in ${JSON.stringify(text)}`)
    host = text.slice(1, end).toLowerCase()
    if (!isIPv6(host)) throw new Error(`"${host}" is not an IPv6 address`)
    if (text[end + 1] !== ':') throw new Error(`missing port in ${JSON.stringify(text)} (expected "[${host}]:PORT")`)
    portText = text.slice(end + 2)
  } else {
    const colon = text.lastIndexOf(':')
    if (colon < 0) throw new Error(`missing port in ${JSON.stringify(text)} (expected "host:port")`)
    host = text.slice(0, colon)
    portText = text.slice(colon + 1)
    if (host.includes(':')) throw new Error(`IPv6 addresses need brackets: "[${host}]:${portText}"`)
    host = host === '' ? WILDCARD_HOST : checkHost(host)
  }
  return { host, port: parsePort(portText, 0) }
}

/** "host:port", with brackets around IPv6 addresses ("[::1]:80"). */
export function formatAddress(a: Address): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}

/**
 * A decimal port number between `min` and 65535. Only plain digits are accepted: no sign,
 * no hex, no fraction, no spaces.
 */
export function parsePort(value: unknown, min = 1): number {
  const text = typeof value === 'number' ? String(value) : value
  if (typeof text !== 'string' || !PORT_DIGITS.test(text)) {
    throw new Error(`invalid port ${describe(value)} (expected a number ${min}-65535)`)
  }
  const port = Number(text)
  if (port < min || port > 65535) throw new Error(`port ${port} is out of range ${min}-65535`)
  return port
}

/**
 * An address on the agent's machine: a bare port (2525 or "2525") means 127.0.0.1, otherwise
 * "host:port" as in parseAddress (so ":2525" means every interface).
 */
export function parseLocalAddress(value: unknown, minPort = 0): Address {
  if (typeof value === 'number' || (typeof value === 'string' && PORT_DIGITS.test(value))) {
    return { host: DEFAULT_LOCAL_HOST, port: parsePort(value, minPort) }
  }
  if (typeof value !== 'string') throw new Error(`expected a port or "host:port", got ${describe(value)}`)
  const address = parseAddress(value)
  if (address.port < minPort) throw new Error(`port ${address.port} is out of range ${minPort}-65535`)
  return address
}

/**
 * Where something is dialled: "host:port" with an explicit host and a port 1-65535; a bare port
 * means 127.0.0.1. ":port" is refused because "every interface" makes no sense for a dial.
 */
export function parseDialTarget(value: unknown): Address {
  if (typeof value === 'string' && value.startsWith(':')) {
    throw new Error(`missing host in ${JSON.stringify(value)} (write "127.0.0.1${value}" or just "${value.slice(1)}")`)
  }
  return parseLocalAddress(value, 1)
}

function checkHost(host: string): string {
  if (isIPv4(host)) return host
  const name = normalizeHostname(host)
  if (name === null || isIP(name) !== 0) throw new Error(`invalid host ${JSON.stringify(host)}`)
  return name
}
