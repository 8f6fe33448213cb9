// pino for the bundles (scripts/bundle.mjs and scripts/sea.mjs alias `pino` to this file for the
// product's logger). pino runs a `transport` in a worker thread that loads its target from a file on disk; a
// single executable has no such files. So a pino-pretty transport becomes a pino-pretty stream in
// the main thread, which prints the same lines; everything else goes to the real pino unchanged.
'use strict'
const pino = require('pino')

function pinoInThread(options, stream) {
  if (stream === undefined && options !== undefined && options.transport !== undefined) {
    const { transport, ...rest } = options
    if (transport.target !== 'pino-pretty') {
      throw new Error(`pino transport ${String(transport.target)} is not available in the bundled CLI`)
    }
    // Required here, not at the top: a process that logs JSON never loads pino-pretty.
    const pretty = require('pino-pretty')
    return pino(rest, pretty(transport.options))
  }
  return pino(options, stream)
}

// stdSerializers, destination(), levels, symbols...: the rest of pino's API as it is.
Object.assign(pinoInThread, pino)
pinoInThread.default = pinoInThread
pinoInThread.pino = pinoInThread
module.exports = pinoInThread
