import type { Duplex } from 'node:stream'
import { formatAddress, type Address, type AgentTunnel } from '@porchlight/shared/config'
import type { Logger } from '@porchlight/shared/log'
import { ForwardListener } from './tunnels/forward.js'
import { sameTunnel } from './tunnels/specs.js'

export type ForwardTunnel = Extract<AgentTunnel, { kind: 'forward' }>

export interface ForwardSetDeps {
  log: Logger
  /** A stream to the relay; throws while the link is down (the local connection is then closed). */
  openStream: () => Duplex
  /** A listener is bound (`tcp://host:port`). */
  onListening: (tunnel: ForwardTunnel, url: string) => void
  /** A listener could not be bound during a reload. */
  onFailed: (tunnel: ForwardTunnel, err: Error) => void
}

interface Entry {
  tunnel: ForwardTunnel
  listener: ForwardListener
  address: Address | null
}

/** The agent's outbound forward listeners, by tunnel id: started, diffed on reload, drained on stop. */
export class ForwardSet {
  private readonly entries = new Map<string, Entry>()

  constructor(private readonly deps: ForwardSetDeps) {}

  /** Binds one listener; a bind failure throws (PL_ERR_LISTEN). */
  async start(tunnel: ForwardTunnel): Promise<void> {
    const listener = new ForwardListener({ tunnel, openStream: this.deps.openStream, log: this.deps.log.child({ tunnel: tunnel.id }) })
    const entry: Entry = { tunnel, listener, address: null }
    this.entries.set(tunnel.id, entry)
    try {
      entry.address = await listener.listen()
    } catch (err) {
      this.entries.delete(tunnel.id)
      throw err
    }
    const url = `tcp://${formatAddress(entry.address)}`
    this.deps.log.info({ tunnel: tunnel.id, listen: formatAddress(entry.address), to: formatAddress(tunnel.to) }, 'forward listening')
    this.deps.onListening(tunnel, url)
  }

  /** Keeps identical listeners, closes removed or changed ones, starts new ones (failures are reported, not thrown). */
  async reload(tunnels: ReadonlyArray<AgentTunnel>): Promise<void> {
    const wanted = new Map(tunnels.filter((t): t is ForwardTunnel => t.kind === 'forward').map((t) => [t.id, t] as const))
    for (const [id, entry] of [...this.entries]) {
      const replacement = wanted.get(id)
      if (replacement !== undefined && sameTunnel(replacement, entry.tunnel)) {
        wanted.delete(id)
        if (entry.address !== null) this.deps.onListening(entry.tunnel, `tcp://${formatAddress(entry.address)}`)
        continue
      }
      this.entries.delete(id)
      await entry.listener.close()
    }
    for (const tunnel of wanted.values()) {
      try {
        await this.start(tunnel)
      } catch (err) {
        this.deps.log.error({ err, tunnel: tunnel.id }, 'cannot start forward listener')
        this.deps.onFailed(tunnel, err as Error)
      }
    }
  }

  /** Stops accepting at once; live connections get up to graceMs. */
  async close(graceMs: number): Promise<void> {
    const closing = [...this.entries.values()].map((e) => e.listener.close({ graceMs }).catch((err: unknown) => this.deps.log.warn({ err }, 'forward close failed')))
    this.entries.clear()
    await Promise.all(closing)
  }

  address(id: string): Address | null {
    return this.entries.get(id)?.address ?? null
  }
}
