import { z } from 'zod'

/**
 * Control-stream messages (the first stream the agent opens) and stream heads (the first framed
 * message on every data stream). Every message is validated with these schemas on receipt;
 * strict objects reject unknown keys, and sizes are bounded so hostile JSON stays cheap.
 */
const name = z.string().min(1).max(253)
const shortText = z.string().max(1024)
const headerList = z.array(z.tuple([z.string().max(256), z.string().max(16 * 1024)])).max(256)

/** Visitor access rules for one published tunnel; the relay enforces them. */
export const AccessSpec = z.strictObject({
  links: z.boolean().optional(),
  basic: z.strictObject({ user: z.string().min(1).max(256), password_hash: z.string().min(1).max(512) }).optional(),
  allow_ips: z.array(z.string().max(64)).max(256).optional(),
  client_certs: z.union([z.boolean(), z.array(z.string().max(63)).max(256)]).optional(),
})
export type AccessSpec = z.infer<typeof AccessSpec>

/**
 * How the relay writes requests for an http tunnel whose agent takes connection streams: the Host
 * the local server expects and the path prefix of its `to` URL. Printable ASCII, no spaces, so
 * neither can break the request line or a header.
 */
export const OriginSpec = z.strictObject({
  host: z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/),
  path: z.string().max(2048).regex(/^(\/[\x21-\x7e]*)?$/),
})
export type OriginSpec = z.infer<typeof OriginSpec>

export const TunnelSpec = z.discriminatedUnion('kind', [
  /** `origin` present: the agent pipes one connection stream per visitor connection to its local
   *  server (HttpConnectionHead); absent: one stream per request (HttpRequestHead), which the agent
   *  needs while its inspector or terminal view shows each exchange. */
  z.strictObject({ id: name, kind: z.literal('http'), host: name, access: AccessSpec.optional(), origin: OriginSpec.optional() }),
  z.strictObject({
    id: name,
    kind: z.literal('tcp'),
    remote_port: z.number().int().min(0).max(65535).optional(),
    allow_ips: z.array(z.string().max(64)).max(256).optional(),
    proxy_protocol: z.enum(['v1', 'v2']).optional(),
  }),
])
export type TunnelSpec = z.infer<typeof TunnelSpec>

export const PublishResult = z.union([
  z.strictObject({ id: name, ok: z.literal(true), url: shortText }),
  z.strictObject({ id: name, ok: z.literal(false), code: shortText, message: shortText }),
])
export type PublishResult = z.infer<typeof PublishResult>

/** Messages the agent sends on the control stream. */
export const AgentMessage = z.discriminatedUnion('type', [
  /** First message: protocol version and the agent's software version. */
  z.strictObject({ type: z.literal('hello'), version: z.number().int(), agent_version: shortText }),
  /** Replaces the agent's whole set of published tunnels (sent after hello and on reload). */
  z.strictObject({ type: z.literal('publish'), tunnels: z.array(TunnelSpec).max(256) }),
  /** A request the relay answers with `response` carrying the same id (share links, status). */
  z.strictObject({ type: z.literal('request'), id: z.number().int().nonnegative(), op: z.string().max(64), args: z.record(z.string(), z.unknown()) }),
])
export type AgentMessage = z.infer<typeof AgentMessage>

/** Messages the relay sends on the control stream. */
export const RelayMessage = z.discriminatedUnion('type', [
  /** Answer to hello: who the relay thinks we are and its public domain. */
  z.strictObject({ type: z.literal('welcome'), version: z.number().int(), agent: name, session: shortText, domain: name }),
  /** Answer to publish: one result per tunnel, in order. */
  z.strictObject({ type: z.literal('published'), results: z.array(PublishResult).max(256) }),
  /** Answer to request. */
  z.strictObject({
    type: z.literal('response'), id: z.number().int().nonnegative(), ok: z.boolean(),
    result: z.unknown().optional(), code: shortText.optional(), message: shortText.optional(),
  }),
  /**
   * Something the agent should log (e.g. certificate revoked, session replaced). Code
   * HTTPS_READY_NOTICE carries `TUNNEL-ID URL`: the tunnel is now served at that https:// URL.
   */
  z.strictObject({ type: z.literal('notice'), level: z.enum(['info', 'warn', 'error']), code: shortText, message: shortText }),
])
export type RelayMessage = z.infer<typeof RelayMessage>

/**
 * A notice code, not an error: a tunnel's certificate is ready (ACME), message `TUNNEL-ID URL`.
 * A notice keeps older agents compatible: they log it and keep showing the http:// URL.
 */
export const HTTPS_READY_NOTICE = 'PL_NOTICE_HTTPS_READY'

/**
 * A notice code: the relay is a cluster member, message `self=ID ID=URL ...` (this relay's id,
 * then every member's id and agents URL). The agent keeps one link to every member. A notice,
 * not a message type, so older agents log it and keep their single link.
 */
export const CLUSTER_MEMBERS_NOTICE = 'PL_NOTICE_CLUSTER_MEMBERS'

/** First message on a stream the relay opens for one visitor HTTP request. */
export const HttpRequestHead = z.strictObject({
  t: z.literal('http'),
  tunnel: name,
  host: name,
  method: z.string().min(1).max(32),
  url: z.string().min(1).max(16 * 1024),
  headers: headerList,
  upgrade: z.boolean(),
  /** False when the visitor's request has no body (no Content-Length, no Transfer-Encoding), so the
   *  agent can send it at once instead of waiting for the stream's FIN. */
  has_body: z.boolean().optional(),
})
export type HttpRequestHead = z.infer<typeof HttpRequestHead>

/**
 * First message on a stream the relay opens for one visitor connection to an http tunnel that
 * takes connection streams. The agent dials its local server, answers {t:'ok'} (or an error head)
 * and then pipes bytes both ways: everything it passes on was written by the relay's HTTP client
 * from the relay's own parse of the visitor's requests, and the relay parses every response
 * before a visitor sees it (SECURITY.md rule 2). One stream never carries two visitor connections.
 */
export const HttpConnectionHead = z.strictObject({ t: z.literal('http-conn'), tunnel: name, host: name })
export type HttpConnectionHead = z.infer<typeof HttpConnectionHead>

/** First message on a stream the relay opens for one TCP connection to a reverse-TCP tunnel. */
export const TcpHead = z.strictObject({
  t: z.literal('tcp'),
  tunnel: name,
  remote_address: z.string().max(64),
  remote_port: z.number().int().min(0).max(65535),
  local_address: z.string().max(64),
  local_port: z.number().int().min(0).max(65535),
})
export type TcpHead = z.infer<typeof TcpHead>

/** First message on a stream the agent opens for an outbound forward. */
export const ForwardHead = z.strictObject({ t: z.literal('forward'), host: name, port: z.number().int().min(1).max(65535) })
export type ForwardHead = z.infer<typeof ForwardHead>

export const StreamHead = z.discriminatedUnion('t', [HttpRequestHead, HttpConnectionHead, TcpHead, ForwardHead])
export type StreamHead = z.infer<typeof StreamHead>

/** Reply head on a stream: the origin's response (http) or the dial outcome (tcp/forward). */
export const ReplyHead = z.discriminatedUnion('t', [
  z.strictObject({ t: z.literal('response'), status: z.number().int().min(100).max(999), status_message: shortText.optional(), headers: headerList }),
  z.strictObject({ t: z.literal('ok') }),
  z.strictObject({ t: z.literal('error'), code: shortText, message: shortText }),
])
export type ReplyHead = z.infer<typeof ReplyHead>
