import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { sendPage, writeRawPage, type PageOptions } from './pages.js'

/** One visitor request on its way: what onClientError must finish or reset. */
export interface Exchange {
  req: IncomingMessage
  res: ServerResponse
  /** The request's mux stream (or its origin request on a connection stream), once opened. */
  stream: { destroy(): void } | null
}

/**
 * Node's parser errors and timeouts on visitor connections (`clientError`). A connection may have
 * requests still being answered (pipelining, a body still arriving), so an error page cannot
 * simply be written: it would be read as the answer to one of those.
 */
export class VisitorConnections {
  /** The newest exchange under way on each connection (pipelined ones queue behind it). */
  private readonly answering = new WeakMap<Socket, Exchange>()

  /** Tracks a request until finish() (called from the response's own 'close' handler). */
  begin(req: IncomingMessage, res: ServerResponse): Exchange {
    const exchange: Exchange = { req, res, stream: null }
    this.answering.set(req.socket, exchange)
    return exchange
  }

  /** The response closed: forget the exchange unless a pipelined one replaced it already. */
  finish(exchange: Exchange): void {
    if (this.answering.get(exchange.req.socket) === exchange) this.answering.delete(exchange.req.socket)
  }

  readonly onClientError = (err: NodeJS.ErrnoException, socket: Socket): void => {
    const page = clientErrorPage(err)
    const inFlight = this.answering.get(socket)
    if (inFlight !== undefined && !socket.destroyed) {
      if (!inFlight.req.complete) {
        // The request being read broke its body framing or ran out of time: reset its origin
        // request and answer if nothing was sent yet; either way the connection ends here.
        inFlight.stream?.destroy()
        inFlight.res.shouldKeepAlive = false
        sendPage(inFlight.res, 'PL_ERR_HTTP_BAD_REQUEST', undefined, page)
        return
      }
      // Unparseable bytes behind requests still being answered: finish them in order, then close.
      inFlight.res.shouldKeepAlive = false
      return
    }
    if (socket.writable && !socket.destroyed) writeRawPage(socket, 'PL_ERR_HTTP_BAD_REQUEST', undefined, page)
    else socket.destroy()
  }
}

/** Node's parser and timeout errors as pages: 431 for oversized headers, 408 for slow clients, else 400. */
export function clientErrorPage(err: NodeJS.ErrnoException): PageOptions {
  if (err.code === 'HPE_HEADER_OVERFLOW') return { status: 431, detail: 'request headers too large' }
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return { status: 408, detail: 'request not received in time' }
  return { detail: 'bad request: malformed HTTP' }
}
