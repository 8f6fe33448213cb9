/**
 * Which relay ports an agent may listen on (the `tcp_ports` policy) and how the relay picks one
 * when the agent leaves the choice to it. Pure: the caller says which ports are taken.
 */
export interface PortRange {
  from: number
  to: number
}

const MIN_PORT = 1
const MAX_PORT = 65535

/** True when `port` is a real TCP port (1-65535, integer) inside one of the ranges and not reserved. */
export function portAllowed(port: number, ranges: readonly PortRange[], reserved?: ReadonlySet<number>): boolean {
  if (!Number.isInteger(port) || port < MIN_PORT || port > MAX_PORT) return false
  if (reserved?.has(port)) return false
  return ranges.some((r) => port >= r.from && port <= r.to)
}

/**
 * Picks a free allowed port: starts at a random position across all ranges and scans forward
 * (wrapping) at most once over every allowed port, so the work is bounded by the policy size
 * (at most 65535 checks). Returns null when every allowed port is taken.
 */
export function pickPort(
  ranges: readonly PortRange[],
  isTaken: (port: number) => boolean,
  random: () => number = Math.random,
): number | null {
  const spans = clampRanges(ranges)
  const total = spans.reduce((sum, r) => sum + (r.to - r.from + 1), 0)
  if (total === 0) return null
  const start = Math.floor(random() * total) % total
  for (let i = 0; i < total; i++) {
    const port = portAt(spans, (start + i) % total)
    if (!isTaken(port)) return port
  }
  return null
}

/** Ranges cut to 1-65535, empty ones dropped, overlaps merged, so each port is counted once. */
function clampRanges(ranges: readonly PortRange[]): PortRange[] {
  const clamped = ranges
    .filter((r) => Number.isInteger(r.from) && Number.isInteger(r.to))
    .map((r) => ({ from: Math.max(MIN_PORT, r.from), to: Math.min(MAX_PORT, r.to) }))
    .filter((r) => r.from <= r.to)
    .sort((a, b) => a.from - b.from)
  const merged: PortRange[] = []
  for (const r of clamped) {
    const last = merged[merged.length - 1]
    if (last && r.from <= last.to + 1) last.to = Math.max(last.to, r.to)
    else merged.push({ ...r })
  }
  return merged
}

function portAt(spans: readonly PortRange[], index: number): number {
  let rest = index
  for (const r of spans) {
    const size = r.to - r.from + 1
    if (rest < size) return r.from + rest
    rest -= size
  }
  throw new RangeError(`port index ${index} outside the policy`)
}
