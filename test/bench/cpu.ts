// CPU per request at a fixed offered rate: utime+stime from /proc/PID/stat of the processes that
// carry the tunnel (relay + agent, or sshd's session processes + ssh), before and after a fixed-rate
// run issued by a small keep-alive client in this process.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { Agent, request } from 'node:http'

let clkTck = 0
function ticksPerSecond(): number {
  if (clkTck === 0) {
    try { clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { clkTck = 100 }
  }
  return clkTck
}

interface Stat { ppid: number; cpuTicks: number }

function readStat(pid: number): Stat | null {
  let text: string
  try { text = readFileSync(`/proc/${pid}/stat`, 'utf8') } catch { return null }
  // The command name may hold spaces and parentheses: fields are counted after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(f[1]), cpuTicks: Number(f[11]) + Number(f[12]) }
}

/** pid and every live descendant of it (sshd -D forks a monitor and a session process per connection). */
export function withDescendants(root: number): number[] {
  const parents = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const s = readStat(Number(name))
    if (s) parents.set(Number(name), s.ppid)
  }
  const out = [root]
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of parents) if (ppid === out[i]) out.push(pid)
  return out
}

/** CPU seconds (user + system) used so far by each pid, summed. */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0
  for (const pid of pids) ticks += readStat(pid)?.cpuTicks ?? 0
  return ticks / ticksPerSecond()
}

export interface FixedRateResult {
  offered: number
  completed: number
  errors: number
  seconds: number
  /** Completed requests per second over the whole window (below `rate` when the tunnel fell behind). */
  achievedRps: number
  cpuUsPerRequest: number
  cpuShare: number
  /** CPU µs per completed request of each group of `groups`, read in the same window. */
  cpuUsPerRequestBy: Record<string, number>
}

/**
 * Offers `rate` GET requests per second for `durationS` over `sockets` keep-alive connections and
 * returns the CPU the given processes spent per completed request. `pids()` is called before and
 * after so processes forked in between (none expected) are not missed.
 */
export async function fixedRate(o: { port: number; host: string; path: string; rate: number; durationS: number; sockets: number; pids: () => number[]; groups?: Record<string, () => number[]> }): Promise<FixedRateResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: o.sockets })
  let completed = 0
  let errors = 0
  let inFlight = 0
  const one = (): void => {
    inFlight++
    const req = request({ host: '127.0.0.1', port: o.port, path: o.path, agent, headers: { host: o.host } }, (res) => {
      res.on('data', () => {})
      res.on('end', () => { inFlight--; if (res.statusCode === 200) completed++; else errors++ })
    })
    req.on('error', () => { inFlight--; errors++ })
    req.end()
  }
  // Warm the connections first so the window measures requests, not handshakes.
  for (let i = 0; i < o.sockets; i++) one()
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 5))
  completed = 0
  errors = 0
  const groups = Object.entries(o.groups ?? {})
  const groupsBefore = groups.map(([, pids]) => cpuSeconds(pids()))
  const before = cpuSeconds(o.pids())
  const started = performance.now()
  let sent = 0
  const total = o.rate * o.durationS
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * o.rate))
      while (sent < due) { one(); sent++ }
      if (sent >= total) { clearInterval(tick); resolve() }
    }, 2)
  })
  const deadline = performance.now() + 15_000
  while (inFlight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5))
  const seconds = (performance.now() - started) / 1000
  const cpu = cpuSeconds(o.pids()) - before
  const perRequest = (cpuS: number): number => (completed > 0 ? (cpuS * 1e6) / completed : NaN)
  const cpuUsPerRequestBy = Object.fromEntries(groups.map(([name, pids], i) => [name, perRequest(cpuSeconds(pids()) - groupsBefore[i]!)]))
  agent.destroy()
  return { offered: total, completed, errors, seconds, achievedRps: completed / seconds, cpuUsPerRequest: perRequest(cpu), cpuShare: cpu / seconds, cpuUsPerRequestBy }
}

/** Runs `run` and also returns the CPU seconds the given processes spent meanwhile. */
export async function withCpu<T>(pids: () => number[], run: () => Promise<T>): Promise<{ result: T; cpuS: number }> {
  const before = cpuSeconds(pids())
  const result = await run()
  return { result, cpuS: cpuSeconds(pids()) - before }
}
