import { createHash, randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import nodemailer from 'nodemailer'
import { SMTPServer, type SMTPServerSession } from 'smtp-server'
import { createTestCa, createTestCert } from '../../../packages/shared/src/pki/testing.js'
import type { Scope } from './scope.js'

/**
 * A real SMTP exchange for the forward tests: `smtp-server` on a loopback port with STARTTLS
 * (a throwaway CA and server certificate), and `nodemailer` as the laptop's mail client.
 */

/** The name in the throwaway server certificate; the client verifies it (TLS is end to end). */
export const SMTP_SERVER_NAME = 'smtp.porchlight.test'

export interface ReceivedMail {
  /** The message exactly as the server read it after DATA (dot-unstuffed). */
  raw: Buffer
  sha256: string
  from: string
  to: string[]
  /** True when the message came over TLS (STARTTLS done). */
  secure: boolean
  tlsProtocol: string | null
  /** The TCP peer of the SMTP session (the relay, for a forward). */
  remoteAddress: string
  /** The name the client gave in EHLO. */
  ehloName: string
}

export interface SmtpService {
  port: number
  /** PEM of the throwaway CA that signed the server certificate (the client trusts only this). */
  caPem: string
  mails: ReceivedMail[]
  /** TCP connections accepted so far (a refused forward must leave this unchanged). */
  connections(): number
}

/** Starts smtp-server on 127.0.0.1:0 with STARTTLS offered; closed when the scope ends. */
export async function startSmtpServer(t: Scope): Promise<SmtpService> {
  const ca = await createTestCa({ commonName: 'Porchlight SMTP test CA' })
  const cert = await createTestCert(ca, { commonName: SMTP_SERVER_NAME, profile: 'server', hostnames: [SMTP_SERVER_NAME] })
  const mails: ReceivedMail[] = []
  let connections = 0
  const server = new SMTPServer({
    secure: false,
    key: cert.keyPem,
    cert: cert.certPem,
    authOptional: true,
    disabledCommands: ['AUTH'],
    logger: false,
    size: 32 * 1024 * 1024,
    onConnect(_session, callback) {
      connections++
      callback()
    },
    onData(stream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.once('end', () => {
        const raw = Buffer.concat(chunks)
        mails.push({
          raw,
          sha256: createHash('sha256').update(raw).digest('hex'),
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map(r => r.address),
          secure: session.secure,
          tlsProtocol: session.tlsOptions === false ? null : session.tlsOptions.version ?? null,
          remoteAddress: session.remoteAddress,
          ehloName: session.hostNameAppearsAs,
        })
        callback(null, `queued as mail-${mails.length}`)
      })
    },
  })
  server.on('error', () => { /* a client that drops mid-session is not the test's failure */ })
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  const port = (server.server.address() as AddressInfo).port
  return { port, caPem: ca.certPem, mails, connections: () => connections }
}

/**
 * A test message with CRLF line endings only (so no client rewrites it), lines that start with
 * "." (SMTP dot-stuffing must be undone exactly), UTF-8, and about bodyBytes of base64 lines.
 */
export function buildRawMessage(opts: { from: string; to: string; subject: string; bodyBytes: number }): Buffer {
  const lines = [
    `From: <${opts.from}>`,
    `To: <${opts.to}>`,
    `Subject: ${opts.subject}`,
    `Message-ID: <${randomBytes(8).toString('hex')}@laptop.porchlight.test>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'Hello through the relay: grüße, ½, ✓.',
    '.a line starting with a dot',
    '..two dots',
    '.',
    'the line above was a single dot',
  ]
  let size = lines.reduce((n, l) => n + l.length + 2, 0)
  for (let i = 0; size < opts.bodyBytes; i++) {
    // 57 random bytes -> one 76-character base64 line, like a MIME attachment.
    const line = i % 97 === 0 ? `.${randomBytes(57).toString('base64')}` : randomBytes(57).toString('base64')
    lines.push(line)
    size += line.length + 2
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8')
}

export interface SendResult {
  response: string
  accepted: string[]
  rejected: string[]
  ms: number
}

/**
 * Sends raw with nodemailer to 127.0.0.1:port, requiring STARTTLS and verifying the server's
 * certificate against caPem for SMTP_SERVER_NAME (a relay in the middle could not pass this).
 */
export async function sendRawMail(port: number, opts: { caPem: string; from: string; to: string; raw: Buffer; timeoutMs?: number }): Promise<SendResult> {
  const timeoutMs = opts.timeoutMs ?? 20_000
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    name: 'laptop.porchlight.test',
    tls: { ca: [opts.caPem], servername: SMTP_SERVER_NAME, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  })
  const started = Date.now()
  try {
    const info = await transport.sendMail({ envelope: { from: opts.from, to: [opts.to] }, raw: opts.raw })
    const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(a => (typeof a === 'string' ? a : String((a as { address?: unknown }).address))) : [])
    return { response: String(info.response), accepted: list(info.accepted), rejected: list(info.rejected), ms: Date.now() - started }
  } finally {
    transport.close()
  }
}
