/**
 * The one table of Porchlight error codes. Code across the wire and across versions matches on
 * `err.code`, never `instanceof` (the agent and relay may run different versions).
 * docs/errors.md has one heading per code; a unit test keeps the two in sync.
 */
export interface ErrorSpec {
  /** Message template; `%s` placeholders are filled in order from the args. */
  readonly msg: string
  /** Process exit code when this error ends a CLI command. */
  readonly exit?: number
  /** HTTP status when this error answers a request. */
  readonly status?: number
  /** True when retrying the same thing later may succeed (cloudflared's "permanent or not"). */
  readonly retry: boolean
}

export const codes = {
  // CLI and config
  PL_ERR_USAGE: { msg: '%s', exit: 2, retry: false },
  PL_ERR_CONFIG_INVALID: { msg: 'config %s is invalid:\n%s', exit: 1, retry: false },
  PL_ERR_CONFIG_READ: { msg: 'cannot read config %s: %s', exit: 1, retry: false },
  PL_ERR_CONFIG_YAML: { msg: '%s: %s', exit: 1, retry: false },
  PL_ERR_CONFIG_SECRET: { msg: 'cannot resolve secret %s: %s', exit: 1, retry: false },
  PL_ERR_CONFIG_INSECURE: { msg: 'refusing insecure config: %s', exit: 1, retry: false },
  PL_ERR_LISTEN: { msg: 'cannot listen on %s (%s): %s', exit: 1, retry: false },
  PL_ERR_CONFIG_EXISTS: { msg: '%s already exists; %s', exit: 1, retry: false },
  PL_ERR_CONFIG_AGENT_EXISTS: { msg: 'agent %s is already in %s (`agent allow` widens it, `agent remove` retires it)', exit: 1, retry: false },
  PL_ERR_CONFIG_AGENT_UNKNOWN: { msg: 'no agent %s in %s (see `porchlight-relay agent list`)', exit: 1, retry: false },
  PL_ERR_ENROL_CODE: { msg: 'not a valid enrolment code: %s', exit: 2, retry: false },
  PL_ERR_ENROL_PIN: { msg: 'relay %s did not present the CA certificate the code names (SHA-256 %s); it presented: %s', exit: 1, retry: false },

  // Agent authentication and the link
  PL_ERR_AUTH_BAD_TOKEN: { msg: 'relay rejected the agent token (HTTP 401)', exit: 1, status: 401, retry: false },
  PL_ERR_AUTH_RATE_LIMITED: { msg: 'too many failed authentications from this address; try later', status: 429, retry: true },
  PL_ERR_AUTH_CERT_REQUIRED: { msg: 'relay requires a client certificate for agent %s', exit: 1, status: 403, retry: false },
  PL_ERR_AUTH_CERT_REJECTED: { msg: 'client certificate rejected: %s', exit: 1, status: 403, retry: false },
  PL_ERR_AUTH_RELAY_UNTRUSTED: { msg: 'relay certificate not trusted for %s: %s', retry: true },
  PL_ERR_LINK_CLOCK_SKEW: { msg: "relay certificate for %s: %s, by this machine's clock (%s); check the clock (NTP)", retry: true },
  PL_ERR_LINK_LOST: { msg: 'relay link lost: %s', retry: true },
  PL_ERR_LINK_CONNECT: { msg: 'cannot reach relay %s: %s', retry: true },
  PL_ERR_LINK_PROXY: { msg: 'proxy %s: %s', retry: true },
  PL_ERR_LINK_REPLACED: { msg: 'session replaced by a newer connection of the same agent', retry: false },
  PL_ERR_LINK_DUPLICATE: { msg: 'this agent process already holds a link to this relay; retrying with backoff', status: 409, retry: true },
  PL_ERR_CLUSTER_REDIS: { msg: 'cluster redis %s: %s', status: 503, retry: true },
  PL_ERR_CLUSTER_PEER: { msg: 'cluster peer %s: %s', status: 502, retry: true },
  PL_ERR_LEASE_HELD: { msg: '%s is leased to another agent of the cluster (%s); publishing again later', status: 409, retry: true },
  PL_ERR_LEASE_LOST: { msg: 'the cluster lease on %s passed to another agent: tunnel %s removed; publishing again later', retry: true },
  PL_ERR_LINK_HEARTBEAT: { msg: 'no heartbeat from peer for %s ms', retry: true },
  PL_ERR_LINK_TIMEOUT: { msg: 'relay did not answer %s within %s ms', retry: true },

  // Protocol and multiplexer
  PL_ERR_PROTO_VERSION: { msg: 'unsupported protocol version %s', exit: 1, retry: false },
  PL_ERR_PROTO_FRAME_TOO_LARGE: { msg: 'frame of %s bytes exceeds the %s byte limit', retry: false },
  PL_ERR_PROTO_BAD_FRAME: { msg: 'protocol error: %s', retry: false },
  PL_ERR_PROTO_BAD_MESSAGE: { msg: 'invalid control message: %s', retry: false },
  PL_ERR_PROTO_HEAD_TIMEOUT: { msg: 'stream head timed out after %s ms', retry: true },
  PL_ERR_MUX_CLOSED: { msg: 'multiplexer session closed', retry: true },
  PL_ERR_MUX_GOAWAY: { msg: 'peer is going away; no new streams', retry: true },
  PL_ERR_MUX_STREAM_LIMIT: { msg: 'too many concurrent streams (limit %s)', status: 503, retry: true },
  PL_ERR_MUX_OPEN_RATE: { msg: 'streams opened faster than %s per second; the excess was refused', status: 503, retry: true },
  PL_ERR_MUX_STREAM_RESET: { msg: 'stream reset by peer', retry: true },
  PL_ERR_MUX_TIMEOUT: { msg: 'keepalive timed out after %s ms', retry: true },
  PL_ERR_MUX_IDS_EXHAUSTED: { msg: 'stream ids exhausted on this session; reconnect to open more', retry: true },

  // Policy
  PL_ERR_POLICY_HOST_DENIED: { msg: 'host %s is not allowed for agent %s', retry: false },
  PL_ERR_POLICY_HOST_IN_USE: { msg: 'host %s is already published by another agent', retry: true },
  PL_ERR_POLICY_HOST_TAKEN: { msg: 'host %s is served by another running process of agent %s; stop that process or pick another name', retry: true },
  PL_ERR_POLICY_NO_FREE_NAME: { msg: 'no random name is free for agent %s: its hosts policy needs a "*." pattern (or pass --name)', retry: false },
  PL_ERR_POLICY_HOST_INVALID: { msg: 'invalid hostname %s', retry: false },
  PL_ERR_POLICY_PORT_DENIED: { msg: 'port %s is not allowed for agent %s', retry: false },
  PL_ERR_POLICY_PORT_IN_USE: { msg: 'port %s is already in use', retry: true },
  PL_ERR_POLICY_PORT_TAKEN: { msg: 'port %s is served by another running process of agent %s', retry: true },
  PL_ERR_POLICY_DEST_DENIED: { msg: 'destination %s is not allowed for agent %s', retry: false },
  PL_ERR_POLICY_NOT_PUBLISHED: { msg: 'the agent does not publish %s', retry: false },

  // Visitors
  PL_ERR_HTTP_BAD_REQUEST: { msg: 'bad request: %s', status: 400, retry: false },
  PL_ERR_HTTP_UNKNOWN_HOST: { msg: 'no tunnel for this host', status: 404, retry: false },
  PL_ERR_HTTP_TUNNEL_OFFLINE: { msg: 'tunnel offline', status: 503, retry: true },
  PL_ERR_HTTP_ORIGIN_UNREACHABLE: { msg: 'local server unreachable', status: 502, retry: true },
  PL_ERR_HTTP_ORIGIN_TIMEOUT: { msg: 'local server did not answer in time', status: 504, retry: true },
  PL_ERR_HTTP_BAD_ORIGIN_RESPONSE: { msg: 'local server sent an invalid response', status: 502, retry: true },
  PL_ERR_HTTP_TOO_MANY_CONNECTIONS: { msg: 'too many connections from your address; retry later', status: 503, retry: true },
  PL_ERR_HTTP_BODY_TOO_LARGE: { msg: 'request body larger than the relay accepts', status: 413, retry: false },
  PL_ERR_HTTP_VISITOR_STALLED: { msg: 'visitor read nothing for %s ms with a response pending; connection closed', retry: false },
  PL_ERR_ACCESS_DENIED: { msg: 'access denied', status: 403, retry: false },
  PL_ERR_ACCESS_UNAUTHORIZED: { msg: 'authentication required', status: 401, retry: false },
  PL_ERR_ACCESS_LINK_INVALID: { msg: 'this link is invalid or has expired', status: 401, retry: false },
  PL_ERR_ACCESS_RATE_LIMITED: { msg: 'too many attempts; try later', status: 429, retry: true },

  // Outbound and TCP
  PL_ERR_DIAL_FAILED: { msg: 'cannot connect to %s: %s', retry: true },
  PL_ERR_DIAL_TIMEOUT: { msg: 'connecting to %s timed out', retry: true },
  PL_ERR_DNS_FAILED: { msg: 'cannot resolve %s: %s', retry: true },

  // PKI
  PL_ERR_PKI_EXISTS: { msg: 'a CA already exists in %s (use --force to replace it)', exit: 1, retry: false },
  PL_ERR_PKI_MISSING: { msg: 'no CA in %s (run `porchlight-relay ca init` first)', exit: 1, retry: false },
  PL_ERR_PKI_UNKNOWN_CERT: { msg: 'no issued certificate matches %s', exit: 1, retry: false },
  PL_ERR_TLS_FILE: { msg: 'cannot load TLS file %s: %s', exit: 1, retry: false },
  PL_ERR_STATE_FILE: { msg: 'cannot use state file %s: %s', exit: 1, retry: false },

  // Admin API and agent control requests
  PL_ERR_ADMIN_UNAUTHORIZED: { msg: 'admin token required', status: 401, retry: false },
  PL_ERR_ADMIN_BAD_HOST: { msg: 'the admin listener answers only to loopback names and IP addresses (Host %s)', status: 421, retry: false },
  PL_ERR_ADMIN_CSRF: { msg: 'a state-changing dashboard request needs the page\'s CSRF token in the x-porchlight-csrf header', status: 403, retry: false },
  PL_ERR_ADMIN_DISCONNECTED: { msg: 'disconnected by the relay operator', retry: true },
  PL_ERR_NOT_FOUND: { msg: '%s not found', status: 404, retry: false },
  PL_ERR_AGENT_NOT_RUNNING: { msg: 'no agent is running (nothing answers on %s)', exit: 1, retry: true },
  PL_ERR_LOG_DROPPED: { msg: 'stdout is not being read; log lines beyond %s buffered bytes are dropped', retry: true },
  PL_ERR_INTERNAL: { msg: 'internal error', exit: 70, status: 500, retry: true },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof codes

/** An error that carries a stable code; the only error type the CLI prints without a stack. */
export class PorchlightError extends Error {
  readonly code: ErrorCode
  readonly exit: number
  readonly status: number
  readonly retry: boolean
  /** Extra structured detail (e.g. config issues); never secrets. */
  readonly details?: unknown

  constructor(code: ErrorCode, args: ReadonlyArray<string | number> = [], opts: { cause?: unknown; details?: unknown } = {}) {
    const spec: ErrorSpec = codes[code]
    super(formatMessage(spec.msg, args), opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = 'PorchlightError'
    this.code = code
    this.exit = spec.exit ?? 1
    this.status = spec.status ?? 500
    this.retry = spec.retry
    this.details = opts.details
  }
}

export function plError(code: ErrorCode, ...args: Array<string | number>): PorchlightError {
  return new PorchlightError(code, args)
}

/** True for any error (ours or one that crossed the wire) carrying a PL_ERR_* code. */
export function isPorchlightError(err: unknown): err is { code: ErrorCode; message: string } {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' &&
    (err as { code: string }).code in codes
}

function formatMessage(template: string, args: ReadonlyArray<string | number>): string {
  let i = 0
  return template.replace(/%s/g, () => String(args[i++] ?? ''))
}

/** One line for a terminal: `CODE: message`. Stack only with debug. */
export function formatForCli(err: unknown, debug = false): string {
  if (isPorchlightError(err)) {
    const line = `${err.code}: ${err.message}`
    return debug && err instanceof Error && err.stack ? `${line}\n${err.stack}` : line
  }
  const e = err as { code?: string; message?: string; stack?: string }
  const line = `PL_ERR_INTERNAL: ${e?.message ?? String(err)}${e?.code ? ` (${e.code})` : ''}`
  return debug && e?.stack ? `${line}\n${e.stack}` : line
}
