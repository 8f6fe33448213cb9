// Many idle agents on one relay, in this process: each is a WebSocket + mux session that logs in
// with a real token (its own instance id, as separate agent processes would have), says hello and
// publishes one HTTP tunnel, then only answers the relay's pings. What the relay holds per agent is
// the same as for a real `porchlight up`; this process just does not pay 1,000 Node runtimes for it.
import WebSocket from 'ws'
import { MuxSession, websocketDuplex } from '@porchlight/shared/mux'
import { encodeMessage, MessageDecoder, PROTOCOL_VERSION } from '@porchlight/shared/protocol'

/** The relay admits 32 connections per address on its agents listener; stay below it. */
const AGENTS_PER_SOURCE_ADDRESS = 30
/** Logins in flight at once (each costs the relay a token check and a publish). */
const CONCURRENT_LOGINS = 50
const LOGIN_TIMEOUT_MS = 15_000
const INSTANCE_HEADER = 'x-porchlight-instance'

export interface IdleAgents {
  readonly count: number
  close(): Promise<void>
}

interface IdleAgent {
  ws: WebSocket
  mux: MuxSession
}

/** Connects `count` agents named `name` (token `token`), each publishing `${hostPrefix}-${i}`. */
export async function connectIdleAgents(opts: { agentsUrl: string; token: string; count: number; hostPrefix: string }): Promise<IdleAgents> {
  const agents: IdleAgent[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < opts.count) {
      const i = next++
      agents.push(await login(opts.agentsUrl, opts.token, i, `${opts.hostPrefix}-${i}`))
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(CONCURRENT_LOGINS, opts.count) }, worker))
  } catch (err) {
    for (const a of agents) a.ws.terminate()
    throw err
  }
  return {
    count: agents.length,
    async close(): Promise<void> {
      await Promise.all(agents.map((a) => new Promise<void>((resolve) => {
        if (a.ws.readyState === WebSocket.CLOSED) return resolve()
        a.ws.once('close', () => resolve())
        a.ws.terminate()
      })))
    },
  }
}

async function login(agentsUrl: string, token: string, i: number, host: string): Promise<IdleAgent> {
  // 127.0.0.2, 127.0.0.3, ...: all of 127/8 is loopback on Linux.
  const localAddress = `127.0.0.${2 + Math.floor(i / AGENTS_PER_SOURCE_ADDRESS)}`
  const ws = new WebSocket(agentsUrl, { headers: { authorization: `Bearer ${token}`, [INSTANCE_HEADER]: `bench-${i}` }, perMessageDeflate: false, localAddress })
  const mux = new MuxSession(websocketDuplex(ws), { role: 'client', onStream: (s) => s.destroy() })
  ws.on('error', () => undefined)
  mux.on('error', () => undefined)
  const control = mux.open()
  control.on('error', () => undefined) // a closing link resets it; close() is how these end
  const decoder = new MessageDecoder()
  const timer = setTimeout(() => ws.terminate(), LOGIN_TIMEOUT_MS)
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('unexpected-response', (_req, res) => reject(new Error(`agent ${i}: upgrade refused with HTTP ${res.statusCode}`)))
      ws.once('close', () => reject(new Error(`agent ${i}: closed before its tunnel was published`)))
      control.on('data', (chunk: Buffer) => {
        for (const m of decoder.push(chunk) as Array<Record<string, unknown>>) {
          if (m['type'] === 'welcome') control.write(encodeMessage({ type: 'publish', tunnels: [{ id: host, kind: 'http', host }] }))
          if (m['type'] === 'published') {
            const results = m['results'] as Array<{ ok: boolean; code?: string }>
            if (results[0]?.ok === true) resolve()
            else reject(new Error(`agent ${i}: publish refused: ${results[0]?.code ?? 'no result'}`))
          }
        }
      })
      control.write(encodeMessage({ type: 'hello', version: PROTOCOL_VERSION, agent_version: 'bench-idle-agent' }))
    })
  } finally {
    clearTimeout(timer)
  }
  ws.removeAllListeners('close')
  return { ws, mux }
}
