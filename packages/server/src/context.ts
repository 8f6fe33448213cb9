import type { FailureLimiterFactory } from './access/failure-limit.js'
import type { Duplex } from 'node:stream'
import type { RelayConfig } from '@porchlight/shared/config'
import type { Logger } from '@porchlight/shared/log'
import type { ForwardHead } from '@porchlight/shared/protocol'
import type { Registry } from './agents/registry.js'
import type { AgentSession } from './agents/session.js'
import type { TcpPorts } from './agents/tcp-ports.js'
import type { TunnelTable } from './agents/tunnel-table.js'
import type { Metrics } from './admin/metrics.js'
import type { Activity } from './admin/activity.js'
import type { LinkStore } from './access/links.js'
import type { ClusterNode } from './cluster/node.js'

/** What the relay's parts share. Built once by buildRelay; replaced fields on reload. */
export interface RelayContext {
  config: RelayConfig
  log: Logger
  /** Read side of the tunnel table: hostname -> route, live sessions. */
  registry: Registry<AgentSession>
  /** The one owner of routes, TCP ports and policy: publish, unpublish, reload. */
  tunnels: TunnelTable<AgentSession>
  tcpPorts: TcpPorts
  forwards: { handle(session: AgentSession, stream: Duplex, head: ForwardHead): Promise<void> }
  links: LinkStore
  metrics: Metrics
  /** The dashboard's bounded memory of recent traffic: access-log tail, requests per host per minute. */
  activity: Activity
  /** Hostnames the relay itself answers on; never claimable by agents. */
  reservedHosts: Set<string>
  /** The public URL visitors use for a hostname (scheme and port of the public listener). */
  publicUrl(host: string): string
  /** Serials of revoked client certificates (agents and visitors). */
  revokedSerials(): Set<string>
  /** Addresses of the relay's own listeners (outbound forwards may not dial them). */
  ownAddresses(): Set<string>
  /** This relay as a cluster member, or null (a single relay). */
  cluster: ClusterNode | null
  /** Counters of failed attempts: this relay's table, or cluster-wide in Redis with `cluster:`. */
  failureLimiter: FailureLimiterFactory
  /** GET /readyz: false while draining (and, in a cluster, while cut from Redis when a peer is not). */
  readiness(): { ready: boolean; reason: string }
}
