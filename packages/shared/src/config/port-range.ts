import { parsePort } from './address.js'
import { describe } from './issues.js'

/** An inclusive range of TCP ports; a single port is { from: p, to: p }. */
export interface PortRange {
  from: number
  to: number
}

const RANGE = /^([0-9]{1,5})-([0-9]{1,5})$/

/** `tcp_ports` entries: 2222, "2222" or "30000-30100" (inclusive, from <= to, ports 1-65535). */
export function parsePortRange(value: unknown): PortRange {
  if (typeof value === 'number') {
    const port = parsePort(value)
    return { from: port, to: port }
  }
  if (typeof value !== 'string') throw new Error(`expected a port or "from-to", got ${describe(value)}`)
  const m = RANGE.exec(value)
  if (m === null) {
    const port = parsePort(value)
    return { from: port, to: port }
  }
  const from = parsePort(m[1])
  const to = parsePort(m[2])
  if (from > to) throw new Error(`range ${JSON.stringify(value)} is backwards (write "${to}-${from}")`)
  return { from, to }
}

/** "2222" or "30000-30100". */
export function formatPortRange(r: PortRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`
}
