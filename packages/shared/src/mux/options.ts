import type { MuxStream } from './stream.js'

export interface MuxOptions {
  /** client = agent (odd stream ids), server = relay (even ids). */
  role: 'client' | 'server'
  /** Per-stream receive window at open; never below the spec's 256 KiB (the peer assumes that much). */
  initialWindowBytes?: number
  /** A stream's receive window may grow up to this while its reader keeps up. */
  maxWindowBytes?: number
  /** Cap on the sum of all streams' receive windows; growth stops there (memory bound). */
  maxSessionBufferBytes?: number
  /** Concurrent streams; beyond it an inbound SYN gets RST and open() throws PL_ERR_MUX_STREAM_LIMIT. */
  maxStreams?: number
  /** Inbound streams held while nobody listens for 'stream'; beyond it they get RST. */
  acceptBacklog?: number
  /**
   * Streams the peer may open per second; beyond it an inbound SYN gets RST (rapid open/reset
   * floods, SECURITY.md E2). 0 = unlimited, the default: the relay caps what agents open.
   */
  maxInboundOpensPerSecond?: number
  /** Largest DATA payload accepted or sent; checked on the header, before buffering. */
  maxFrameBytes?: number
  /** PING every this often; 0 disables pings and the keepalive timeout. */
  keepAliveIntervalMs?: number
  /** No frame at all for this long closes the session with PL_ERR_MUX_TIMEOUT; 0 disables. */
  keepAliveTimeoutMs?: number
  /** Inbound streams (same as the 'stream' event). */
  onStream?: (stream: MuxStream) => void
}

export type MuxLimits = Required<Omit<MuxOptions, 'role' | 'onStream'>>

export const MUX_DEFAULTS: Readonly<MuxLimits> = Object.freeze({
  initialWindowBytes: 256 * 1024,
  maxWindowBytes: 16 * 1024 * 1024,
  maxSessionBufferBytes: 64 * 1024 * 1024,
  maxStreams: 1024,
  acceptBacklog: 256,
  maxInboundOpensPerSecond: 0,
  maxFrameBytes: 1024 * 1024,
  keepAliveIntervalMs: 10_000,
  keepAliveTimeoutMs: 20_000,
})
