import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import type { Test } from 'tap'
import { MuxSession, websocketDuplex } from '@porchlight/shared/mux'
import {
  AgentMessage, MessageDecoder, PROTOCOL_VERSION, encodeMessage, readHead, writeHead,
  type PublishResult, type RelayMessage, type TunnelSpec,
} from '@porchlight/shared/protocol'

type Request = Extract<AgentMessage, { type: 'request' }>

export interface FakeRelayOptions {
  token?: string
  /** Answer every upgrade with this status and body instead of accepting (401, 403, 429 tests). */
  rejectWith?: { status: number; body: string }
  /** Decides the publish results; default: every http tunnel -> http://<host>.localhost:<port>, tcp -> tcp://127.0.0.1:4000+i. */
  publish?: (tunnels: TunnelSpec[]) => PublishResult[]
  request?: (req: Request) => { ok: true; result: unknown } | { ok: false; code: string; message: string }
  /** Agent-opened forward streams: 'echo' answers ok and echoes bytes; default refuses with PL_ERR_POLICY_DEST_DENIED. */
  forward?: 'echo'
  /** Never answer hello (handshake timeout tests). */
  silent?: boolean
  welcomeVersion?: number
  keepAliveIntervalMs?: number
  keepAliveTimeoutMs?: number
}

export interface RelaySession {
  mux: MuxSession
  messages: AgentMessage[]
  send(message: RelayMessage): void
  /** Opens a data stream to the agent and writes a head (like a visitor request would). */
  openStream(head: unknown): Duplex
}

/**
 * A relay double speaking the real wire protocol (ws + mux + control messages) on 127.0.0.1:0,
 * for agent tests. It records what the agent sent and lets tests open streams to it.
 */
export class FakeRelay {
  readonly sessions: RelaySession[] = []
  readonly forwardHeads: unknown[] = []
  readonly upgrades: Array<{ authorization: string | undefined; url: string | undefined; instance?: string | string[] | undefined }> = []
  private server: http.Server | null = null
  private wss: WebSocketServer | null = null
  private readonly sockets = new Set<WebSocket>()
  private waiters: Array<() => void> = []
  port = 0

  constructor(private readonly options: FakeRelayOptions = {}) {}

  get url(): string {
    return `ws://127.0.0.1:${this.port}`
  }

  async start(port = 0): Promise<void> {
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 })
    const server = http.createServer((_req, res) => {
      res.writeHead(404)
      res.end()
    })
    server.on('upgrade', (req, socket, head) => {
      socket.on('error', () => undefined)
      this.upgrades.push({ authorization: req.headers.authorization, url: req.url, instance: req.headers['x-porchlight-instance'] })
      const reject = this.options.rejectWith
      const expected = `Bearer ${this.options.token ?? 'test-token-0123456789-0123456789-abcdef'}`
      if (reject !== undefined || req.headers.authorization !== expected) {
        const status = reject?.status ?? 401
        const body = reject?.body ?? 'unauthorized'
        socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
        return
      }
      wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws))
    })
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    this.port = (server.address() as AddressInfo).port
    this.server = server
    this.wss = wss
  }

  /** Drops every agent connection abruptly and stops listening (the port is freed). */
  async kill(): Promise<void> {
    for (const ws of this.sockets) ws.terminate()
    this.sockets.clear()
    const server = this.server
    this.server = null
    this.wss?.close()
    if (server) {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }

  /** Resolves once `count` sessions have published (or at once if they already have). */
  async waitForPublishes(count: number, timeoutMs = 10_000): Promise<void> {
    const started = Date.now()
    while (this.publishCount() < count) {
      if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${count} publishes (have ${this.publishCount()})`)
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve)
        setTimeout(resolve, 50)
      })
    }
  }

  publishCount(): number {
    return this.sessions.reduce((n, s) => n + s.messages.filter((m) => m.type === 'publish').length, 0)
  }

  lastSession(): RelaySession {
    const s = this.sessions[this.sessions.length - 1]
    if (s === undefined) throw new Error('no session yet')
    return s
  }

  private onConnection(ws: WebSocket): void {
    this.sockets.add(ws)
    ws.on('close', () => this.sockets.delete(ws))
    const mux = new MuxSession(websocketDuplex(ws), {
      role: 'server',
      keepAliveIntervalMs: this.options.keepAliveIntervalMs ?? 10_000,
      keepAliveTimeoutMs: this.options.keepAliveTimeoutMs ?? 20_000,
    })
    let control: Duplex | null = null
    const session: RelaySession = {
      mux,
      messages: [],
      send: (message) => {
        control?.write(encodeMessage(message))
      },
      openStream: (head) => {
        const stream = mux.open()
        stream.on('error', () => undefined)
        writeHead(stream, head)
        return stream
      },
    }
    this.sessions.push(session)
    mux.on('stream', (stream: Duplex) => {
      stream.on('error', () => undefined)
      if (control !== null) {
        void this.onForwardStream(stream)
        return
      }
      control = stream
      const decoder = new MessageDecoder()
      stream.on('data', (chunk: Buffer) => {
        for (const raw of decoder.push(chunk)) {
          const message = AgentMessage.parse(raw)
          session.messages.push(message)
          this.onMessage(session, message)
        }
      })
    })
  }

  private async onForwardStream(stream: Duplex): Promise<void> {
    const head = await readHead(stream, 5_000).catch(() => null)
    this.forwardHeads.push(head)
    if (this.options.forward === 'echo') {
      writeHead(stream, { t: 'ok' })
      stream.pipe(stream)
    } else {
      writeHead(stream, { t: 'error', code: 'PL_ERR_POLICY_DEST_DENIED', message: 'destination is not allowed' })
      stream.end()
    }
  }

  private onMessage(session: RelaySession, message: AgentMessage): void {
    if (this.options.silent === true) return
    if (message.type === 'hello') {
      session.send({ type: 'welcome', version: this.options.welcomeVersion ?? PROTOCOL_VERSION, agent: 'laptop', session: `s${this.sessions.length}`, domain: 'localhost' })
    } else if (message.type === 'publish') {
      const results = this.options.publish?.(message.tunnels) ?? message.tunnels.map((t, i): PublishResult =>
        t.kind === 'http'
          ? { id: t.id, ok: true, url: `http://${t.host.includes('.') ? t.host : `${t.host}.localhost`}:${this.port}` }
          : { id: t.id, ok: true, url: `tcp://127.0.0.1:${4000 + i}` })
      session.send({ type: 'published', results })
      for (const w of this.waiters.splice(0)) w()
    } else {
      const answer = this.options.request?.(message) ?? { ok: false, code: 'PL_ERR_NOT_FOUND', message: 'no such op' }
      session.send(answer.ok
        ? { type: 'response', id: message.id, ok: true, result: answer.result }
        : { type: 'response', id: message.id, ok: false, code: answer.code, message: answer.message })
    }
  }
}

export async function startFakeRelay(t: Test, options: FakeRelayOptions = {}): Promise<FakeRelay> {
  const relay = new FakeRelay(options)
  await relay.start()
  t.teardown(() => relay.kill())
  return relay
}

export const TEST_TOKEN = 'test-token-0123456789-0123456789-abcdef'
