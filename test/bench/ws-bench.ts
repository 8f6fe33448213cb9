// N WebSocket connections through one path: opened (a bounded number at a time), left idle, then
// every connection echoes a small message R times, all at once. Reports how many opened and
// survived the idle time, the echo rate, the round-trip percentiles, and the tunnel's CPU per echo.
import WebSocket from 'ws'
import { cpuSeconds } from './cpu.js'
import { median } from './summary.js'

const OPENING_AT_ONCE = 50
const OPEN_TIMEOUT_MS = 10_000
const ECHO_TIMEOUT_MS = 30_000

export interface WsOptions { port: number; host: string; connections: number; idleS: number; echoRounds: number; messageBytes: number; pids: () => number[] }

function open(port: number, host: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { host }, perMessageDeflate: false, handshakeTimeout: OPEN_TIMEOUT_MS })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`status ${String(res.statusCode)}`)))
  })
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
}

/**
 * Every open socket sends one message and waits for its echo; resolves with the round-trip ms of
 * each, NaN for an echo that never came (counted, not fatal: one lost echo must not lose the run).
 */
function echoRound(sockets: WebSocket[], message: Buffer): Promise<number[]> {
  return Promise.all(sockets.map((ws) => new Promise<number>((resolve) => {
    const started = performance.now()
    const timer = setTimeout(() => { ws.off('message', onMessage); resolve(NaN) }, ECHO_TIMEOUT_MS)
    const onMessage = (): void => { clearTimeout(timer); resolve(performance.now() - started) }
    ws.once('message', onMessage)
    ws.send(message)
  })))
}

export async function runWsBench(o: WsOptions): Promise<Record<string, number>> {
  const sockets: WebSocket[] = []
  let failed = 0
  const openStarted = performance.now()
  try {
    for (let i = 0; i < o.connections; i += OPENING_AT_ONCE) {
      const batch = await Promise.allSettled(Array.from({ length: Math.min(OPENING_AT_ONCE, o.connections - i) }, () => open(o.port, o.host)))
      for (const r of batch) if (r.status === 'fulfilled') sockets.push(r.value); else failed++
    }
    const openS = (performance.now() - openStarted) / 1000
    for (const ws of sockets) ws.on('error', () => undefined)
    const idleCpuBefore = cpuSeconds(o.pids())
    await new Promise((r) => setTimeout(r, o.idleS * 1000))
    const idleCpuS = cpuSeconds(o.pids()) - idleCpuBefore
    const alive = sockets.filter((ws) => ws.readyState === WebSocket.OPEN)
    const message = Buffer.alloc(o.messageBytes, 0x61)
    const rtts: number[] = []
    const cpuBefore = cpuSeconds(o.pids())
    const echoStarted = performance.now()
    let lost = 0
    for (let r = 0; r < o.echoRounds; r++) {
      for (const ms of await echoRound(alive, message)) if (Number.isNaN(ms)) lost++; else rtts.push(ms)
    }
    const echoS = (performance.now() - echoStarted) / 1000
    const cpuS = cpuSeconds(o.pids()) - cpuBefore
    rtts.sort((a, b) => a - b)
    return {
      wsOpened: sockets.length,
      wsOpenFailed: failed,
      wsOpenS: openS,
      wsAliveAfterIdle: alive.length,
      wsIdleCpuMsPerS: (idleCpuS * 1000) / o.idleS,
      wsEchoLost: lost,
      wsEchoPerS: rtts.length / echoS,
      wsEchoP50Ms: median(rtts),
      wsEchoP99Ms: percentile(rtts, 0.99),
      wsCpuUsPerEcho: rtts.length > 0 ? (cpuS * 1e6) / rtts.length : NaN,
    }
  } finally {
    for (const ws of sockets) ws.terminate()
  }
}
