import WebSocket from 'ws'
import { MuxSession, websocketDuplex, type MuxStream } from '@porchlight/shared/mux'
import { encodeMessage, MessageDecoder, PROTOCOL_VERSION, readHead, writeHead } from '@porchlight/shared/protocol'
import type { Scope } from '../../e2e/harness/scope.js'

/** What a fake agent answers on one relay-opened stream: a reply head (any value), then a body. */
export type StreamAnswer = (head: Record<string, unknown>, stream: MuxStream) => void

/**
 * A fake agent that speaks the wire protocol by hand (SECURITY.md `fakeAgent`): it authenticates
 * with a real token, says hello, publishes whatever tunnels the test names and answers the relay's
 * streams with whatever reply heads the test writes, including ones no real agent would send.
 */
export class FakeAgent {
  private readonly decoder = new MessageDecoder()
  private readonly received: Array<Record<string, unknown>> = []
  private readonly waiters: Array<() => void> = []
  answer: StreamAnswer = (_head, stream) => stream.destroy()
  closed = false

  private constructor(readonly ws: WebSocket, readonly mux: MuxSession, private readonly control: MuxStream) {
    control.on('data', (chunk: Buffer) => {
      for (const m of this.decoder.push(chunk)) this.received.push(m as Record<string, unknown>)
      this.wake()
    })
    const onClose = (): void => { this.closed = true; this.wake() }
    control.on('close', onClose)
    control.on('error', () => undefined)
    mux.on('close', onClose)
  }

  static async connect(t: Scope, agentsUrl: string, token: string): Promise<FakeAgent> {
    const ws = new WebSocket(agentsUrl, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)))
    })
    ws.on('error', () => undefined)
    let agent: FakeAgent | null = null
    const mux = new MuxSession(websocketDuplex(ws), {
      role: 'client',
      onStream: (stream) => {
        stream.on('error', () => undefined)
        readHead(stream, 5000).then(
          (head) => agent?.answer(head as Record<string, unknown>, stream),
          () => stream.destroy(),
        )
      },
    })
    agent = new FakeAgent(ws, mux, mux.open())
    t.teardown(() => agent?.close())
    return agent
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w()
  }

  send(message: unknown): void {
    this.control.write(encodeMessage(message))
  }

  async hello(): Promise<Record<string, unknown>> {
    this.send({ type: 'hello', version: PROTOCOL_VERSION, agent_version: 'fake-agent' })
    return this.next((m) => m['type'] === 'welcome')
  }

  /** Publishes HTTP tunnels (id = host) and returns the relay's results, in order. */
  async publishHttp(hosts: string[]): Promise<Array<Record<string, unknown>>> {
    this.send({ type: 'publish', tunnels: hosts.map((host) => ({ id: host, kind: 'http', host })) })
    const published = await this.next((m) => m['type'] === 'published')
    return published['results'] as Array<Record<string, unknown>>
  }

  async next(match: (m: Record<string, unknown>) => boolean, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.received.findIndex(match)
      if (i !== -1) return this.received.splice(i, 1)[0]!
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

/**
 * A reply head and body written on a stream, then FIN. Heads over the protocol's 64 KiB message
 * limit are framed anyway (a hostile agent is not bound by our encoder).
 */
export function reply(stream: MuxStream, head: unknown, body = ''): void {
  if (JSON.stringify(head).length < 60 * 1024) writeHead(stream, head)
  else stream.write(encodeMessage(head, 1024 * 1024))
  stream.end(body)
}
