import WebSocket from 'ws'
import { MuxSession, websocketDuplex, type MuxStream } from '@porchlight/shared/mux'
import { encodeMessage, MessageDecoder, PROTOCOL_VERSION } from '@porchlight/shared/protocol'
import type { Scope } from './scope.js'

/**
 * A hand-driven agent for adversarial tests: it authenticates with a real token, opens the control
 * stream and sends whatever messages the test writes, including ones the real agent never would.
 */
export class RawAgent {
  private readonly decoder = new MessageDecoder()
  private readonly received: unknown[] = []
  private readonly waiters: Array<() => void> = []
  closed = false

  private constructor(private readonly ws: WebSocket, private readonly mux: MuxSession, private readonly control: MuxStream) {
    control.on('data', (chunk: Buffer) => {
      for (const m of this.decoder.push(chunk)) this.received.push(m)
      for (const w of this.waiters.splice(0)) w()
    })
    const onClose = (): void => {
      this.closed = true
      for (const w of this.waiters.splice(0)) w()
    }
    control.on('close', onClose)
    mux.on('close', onClose)
    control.on('error', () => undefined)
  }

  /** `headers`: extra upgrade headers (x-porchlight-instance, x-porchlight-link). */
  static async connect(t: Scope, agentsUrl: string, token: string, headers: Record<string, string> = {}): Promise<RawAgent> {
    const ws = new WebSocket(agentsUrl, { headers: { authorization: `Bearer ${token}`, ...headers }, perMessageDeflate: false })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)))
    })
    ws.on('error', () => undefined)
    const mux = new MuxSession(websocketDuplex(ws), { role: 'client', onStream: (s) => s.destroy() })
    const agent = new RawAgent(ws, mux, mux.open())
    t.teardown(() => agent.close())
    return agent
  }

  send(message: unknown): void {
    this.control.write(encodeMessage(message))
  }

  /** Sends hello and waits for the relay's welcome. */
  async hello(): Promise<Record<string, unknown>> {
    this.send({ type: 'hello', version: PROTOCOL_VERSION, agent_version: 'raw-agent' })
    return this.next((m) => m['type'] === 'welcome')
  }

  /** The next received message `match` accepts (removed from the queue); rejects on close or timeout. */
  async next(match: (m: Record<string, unknown>) => boolean, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.received.findIndex((m) => match(m as Record<string, unknown>))
      if (i !== -1) return this.received.splice(i, 1)[0] as Record<string, unknown>
      if (this.closed) throw new Error('control stream closed')
      const left = deadline - Date.now()
      if (left <= 0) throw new Error('timed out waiting for a message')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  close(): void {
    this.mux.close()
    this.ws.terminate()
  }
}
