import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { AGENTS_SHARED_PATH } from '@porchlight/shared/config'
import type { createVisitorHandler } from '../visitors/http.js'
import { checkRequest } from '../visitors/request-checks.js'
import { isOverConnectionCap } from '../visitors/connection-limit.js'
import type { AgentEndpoint } from './upgrade.js'

type VisitorHandler = ReturnType<typeof createVisitorHandler>

export interface SharedEndpointOptions {
  /** The relay's own hostname (`domain`): never a published site, so it cannot shadow a visitor's. */
  domain: () => string
  /** Ports a Host header may carry (the same set the visitors' routing accepts). */
  listenerPorts: () => ReadonlySet<number>
}

/**
 * `listen.agents: shared`: the visitors' HTTPS listener also carries the agents' endpoint, so an
 * agent behind a network that only lets 443 out still connects. Exactly one target is the agents':
 * the path AGENTS_SHARED_PATH (no query) on the relay's own domain, read with the visitors' own
 * Host parse (one parse, one truth). Every other request, that path on any other Host included, is
 * a visitor's and goes where it always went.
 */
export function withSharedAgentsEndpoint(visitors: VisitorHandler, agents: AgentEndpoint, opts: SharedEndpointOptions): VisitorHandler {
  const isAgents = (req: IncomingMessage): boolean => {
    if (req.url !== AGENTS_SHARED_PATH) return false
    // An address over its connection cap gets the visitors' 503, whatever it asked for.
    if (isOverConnectionCap(req.socket)) return false
    const check = checkRequest(req, opts.listenerPorts())
    return check.ok && check.host === opts.domain()
  }
  return {
    ...visitors,
    onRequest: (req: IncomingMessage, res: ServerResponse) => {
      if (isAgents(req)) agents.onRequest(req, res)
      else visitors.onRequest(req, res)
    },
    onUpgrade: (req: IncomingMessage, socket: Socket, head: Buffer) => {
      if (isAgents(req)) agents.onUpgrade(req, socket, head)
      else visitors.onUpgrade(req, socket, head)
    },
  }
}
