/**
 * yamux frame layout (hashicorp/yamux spec.md): a 12-byte big-endian header
 *   version u8 | type u8 | flags u16 | stream id u32 | length u32
 * followed by `length` payload bytes for DATA frames only. For WINDOW_UPDATE the length is a
 * window delta, for PING an opaque value echoed back, for GO_AWAY an error code.
 * Constants and types only; no I/O.
 */
export const HEADER_BYTES = 12
export const PROTO_VERSION = 0

export const FrameType = {
  Data: 0,
  WindowUpdate: 1,
  Ping: 2,
  GoAway: 3,
} as const
export type FrameType = (typeof FrameType)[keyof typeof FrameType]

/** Flags are a bitmask: one frame may carry e.g. ACK|FIN. */
export const Flag = {
  SYN: 1,
  ACK: 2,
  FIN: 4,
  RST: 8,
} as const

export const GoAwayCode = {
  Normal: 0,
  ProtocolError: 1,
  InternalError: 2,
} as const

/** Both peers assume this window for every new stream; only growth can be signalled. */
export const SPEC_INITIAL_WINDOW_BYTES = 256 * 1024

/** Stream ids and window deltas are u32 on the wire. */
export const MAX_U32 = 0xffff_ffff

/** Session-level frames (PING, GO_AWAY) use stream id 0. */
export const SESSION_STREAM_ID = 0

export interface FrameHeader {
  version: number
  type: number
  flags: number
  streamId: number
  length: number
}
