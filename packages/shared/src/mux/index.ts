// The stream multiplexer: yamux wire format (hashicorp/yamux spec.md) over one byte transport.
export { MuxSession } from './session.js'
export { MuxStream } from './stream.js'
export { MUX_DEFAULTS, type MuxOptions } from './options.js'
export { websocketDuplex, type WebSocketDuplexOptions } from './ws-duplex.js'
export { GoAwayCode } from './frames.js'
