import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '@porchlight/shared/log'

/** Bound on remembered picks (tunnel ids come from agents; the map must not grow without end). */
export const MAX_REMEMBERED_PICKS = 4096
const FILE = 'tcp-ports.json'

/**
 * The port the relay picked for each agent's `tcp: 0` tunnel, so the agent gets the same port
 * back when it reconnects, and, with a `state:` directory, after the relay restarts too: an SSH
 * config pointing at relay:port keeps working. Oldest picks are forgotten first.
 */
export class PickedPorts {
  private readonly picks = new Map<string, number>()
  private readonly file: string | null

  constructor(stateDir: string | null, private readonly log: Logger) {
    this.file = stateDir === null ? null : join(stateDir, FILE)
    if (stateDir !== null) mkdirSync(stateDir, { recursive: true, mode: 0o700 })
    if (this.file !== null) this.load(this.file)
  }

  get(agent: string, tunnelId: string): number | undefined {
    return this.picks.get(key(agent, tunnelId))
  }

  set(agent: string, tunnelId: string, port: number): void {
    const k = key(agent, tunnelId)
    if (this.picks.get(k) === port) return
    this.picks.delete(k)
    this.picks.set(k, port)
    if (this.picks.size > MAX_REMEMBERED_PICKS) this.picks.delete(this.picks.keys().next().value ?? '')
    this.save()
  }

  forget(agent: string, tunnelId: string): void {
    if (this.picks.delete(key(agent, tunnelId))) this.save()
  }

  get size(): number {
    return this.picks.size
  }

  /** A missing file is an empty memory; an unreadable one is logged and ignored (ports are only a convenience). */
  private load(file: string): void {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err, file }, 'cannot read remembered tcp ports; starting without them')
      return
    }
    try {
      const parsed = JSON.parse(text) as { version?: unknown; picks?: unknown }
      if (parsed.version !== 1 || !Array.isArray(parsed.picks)) throw new Error('unexpected format')
      for (const entry of parsed.picks.slice(-MAX_REMEMBERED_PICKS) as unknown[]) {
        if (!Array.isArray(entry) || entry.length !== 3) continue
        const [agent, tunnelId, port] = entry as unknown[]
        if (typeof agent === 'string' && typeof tunnelId === 'string' && Number.isInteger(port) && (port as number) > 0 && (port as number) < 65536) {
          this.picks.set(key(agent, tunnelId), port as number)
        }
      }
    } catch (err) {
      this.log.warn({ err: { message: (err as Error).message }, file }, 'remembered tcp ports file is invalid; starting without it')
    }
  }

  /** Atomic replace (write then rename), mode 0600 like the rest of the state directory. */
  private save(): void {
    if (this.file === null) return
    const picks = [...this.picks].map(([k, port]) => [...k.split('\n'), port])
    const tmp = `${this.file}.tmp`
    try {
      writeFileSync(tmp, `${JSON.stringify({ version: 1, picks })}\n`, { mode: 0o600 })
      renameSync(tmp, this.file)
    } catch (err) {
      this.log.warn({ err, file: this.file }, 'cannot save remembered tcp ports')
    }
  }
}

function key(agent: string, tunnelId: string): string {
  return `${agent}\n${tunnelId}`
}
