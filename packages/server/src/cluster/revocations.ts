import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import type { Logger } from '@porchlight/shared/log'
import type { LinkEvent } from '../access/links.js'
import { seal, unseal } from './keys.js'

/**
 * What goes on the stream: share-link changes, revoked certificate serials, and ACME certificates
 * a member stored in Redis (each member then serves it without a restart).
 */
export type RevocationEvent = LinkEvent | { t: 'cert.revoke'; serial: string } | { t: 'acme.cert'; name: string; serial: string }

/** Entries kept in the stream (approximate trim); a member away for longer replays what is left. */
const STREAM_MAX_LEN = 100_000
/** How long one XREAD waits for new entries (bounds how long stop() waits). */
const BLOCK_MS = 1_000
const BATCH = 500
/** Past BLOCK_MS, how long an XREAD answer may be late before the connection is replaced. */
const READ_GRACE_MS = 2_000

export interface RevocationStreamDeps {
  /** For XADD (command timeout applies). */
  redis: Redis
  /** A second connection only for XREAD BLOCK. */
  reader: Redis
  sealKey: Buffer
  self: string
  key: string
  log: Logger
  /** Where the last applied entry id is kept across restarts; null: replay from the start. */
  stateDir: string | null
  apply: (event: RevocationEvent, from: string) => void
}

/**
 * Revocations and share-link changes on a Redis Stream, not pub/sub (which loses what a member
 * misses while away): each member replays from the last entry it applied, kept in its state
 * directory, so a relay that was cut off or restarted catches up on start and reconnect.
 */
export class RevocationStream {
  private lastId: string
  private running = false
  private loop: Promise<void> | null = null

  constructor(private readonly deps: RevocationStreamDeps) {
    this.lastId = this.loadLastId()
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.loop = this.read()
  }

  async stop(): Promise<void> {
    this.running = false
    this.deps.reader.disconnect()
    await this.loop
  }

  /** Appends an event; rejects when Redis does not take it (the caller says so, loudly). */
  async publish(event: RevocationEvent): Promise<void> {
    const value = seal(this.deps.sealKey, JSON.stringify({ ...event, from: this.deps.self }))
    await this.deps.redis.xadd(this.deps.key, 'MAXLEN', '~', String(STREAM_MAX_LEN), '*', 'e', value)
  }

  private async read(): Promise<void> {
    while (this.running) {
      let reply: Array<[string, Array<[string, string[]]>]> | null
      let watchdog: NodeJS.Timeout | undefined
      try {
        // BLOCK bounds the wait while Redis answers; a path that silently drops packets does
        // not, so the connection is replaced when the answer is overdue.
        const overdue = new Promise<never>((_, reject) => {
          watchdog = setTimeout(() => {
            this.deps.reader.disconnect(true)
            reject(new Error('XREAD overdue'))
          }, BLOCK_MS + READ_GRACE_MS)
        })
        reply = await Promise.race([this.deps.reader.xread('COUNT', BATCH, 'BLOCK', BLOCK_MS, 'STREAMS', this.deps.key, this.lastId) as Promise<typeof reply>, overdue])
      } catch {
        // Redis away (connectRedis logs it): try again shortly; nothing is lost, the id is kept.
        if (this.running) await new Promise((r) => setTimeout(r, 250))
        continue
      } finally {
        clearTimeout(watchdog)
      }
      for (const [, entries] of reply ?? []) {
        for (const [id, fields] of entries) {
          this.applyEntry(fields)
          this.lastId = id
        }
        if (entries.length > 0) this.saveLastId()
      }
    }
  }

  private applyEntry(fields: string[]): void {
    const value = fields[fields.indexOf('e') + 1]
    const text = value === undefined ? null : unseal(this.deps.sealKey, value)
    if (text === null) {
      this.deps.log.warn({ code: 'PL_ERR_CLUSTER_REDIS' }, 'revocation stream entry not sealed with the cluster secret; skipped')
      return
    }
    try {
      const event = JSON.parse(text) as RevocationEvent & { from: string }
      this.deps.apply(event, event.from)
    } catch (err) {
      this.deps.log.warn({ code: 'PL_ERR_CLUSTER_REDIS', err: { message: (err as Error).message } }, 'revocation stream entry unreadable; skipped')
    }
  }

  private loadLastId(): string {
    if (this.deps.stateDir === null) return '0'
    try {
      const text = readFileSync(join(this.deps.stateDir, 'cluster-stream-id'), 'utf8').trim()
      return /^\d{1,20}-\d{1,20}$/.test(text) ? text : '0'
    } catch {
      return '0'
    }
  }

  private saveLastId(): void {
    if (this.deps.stateDir === null) return
    const file = join(this.deps.stateDir, 'cluster-stream-id')
    try {
      mkdirSync(this.deps.stateDir, { recursive: true, mode: 0o700 })
      writeFileSync(`${file}.tmp`, `${this.lastId}\n`, { mode: 0o600 })
      renameSync(`${file}.tmp`, file)
    } catch (err) {
      this.deps.log.warn({ code: 'PL_ERR_STATE_FILE', err: { message: (err as Error).message } }, 'cannot save the revocation stream position')
    }
  }
}
