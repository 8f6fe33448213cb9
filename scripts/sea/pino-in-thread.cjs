// pino for the single executables (scripts/sea.mjs aliases `pino` to this file for the product's
// logger). pino runs a `transport` in a worker thread that loads its target from a file on disk; a
// single executable has no such files. So a pino-pretty transport becomes a pino-pretty stream in
// the main thread, which prints the same lines; everything else goes to the real pino unchanged.
'use strict'
const pino = require('pino')
const pretty = require('pino-pretty')

function pinoInThread(options, stream) {
  if (stream === undefined && options !== undefined && options.transport !== undefined) {
    const { transport, ...rest } = options
    if (transport.target !== 'pino-pretty') {
      throw new Error(`pino transport ${String(transport.target)} is not available in the single executable`)
    }
    return pino(rest, pretty(transport.options))
  }
  return pino(options, stream)
}

// stdSerializers, destination(), levels, symbols...: the rest of pino's API as it is.
Object.assign(pinoInThread, pino)
pinoInThread.default = pinoInThread
pinoInThread.pino = pinoInThread
module.exports = pinoInThread
