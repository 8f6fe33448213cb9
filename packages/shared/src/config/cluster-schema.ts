import { closeSync, readSync } from 'node:fs'
import { z } from 'zod'
import { convert, requireString, strict } from './fields.js'
import { resolveConfigPath } from './paths.js'
import { openConfigFile, pemFile, type SchemaContext } from './value-fields.js'

/**
 * relay.yaml `cluster:`: several relays sharing control state in Redis (docs/cluster.md).
 * Absent (null): a single relay, behaviour unchanged.
 */
export interface RelayCluster {
  /** This relay's member id, unique in the cluster. */
  id: string
  /** redis:// or rediss:// URL of the shared Redis. */
  redis: string
  /** File holding the secret shared by every relay (>= 32 bytes): peer auth, sealing what Redis stores. */
  secret_file: string
  /** Where agents and peers reach this relay (sent to agents and written to Redis). */
  advertise: { agents: string; peer: string }
  /** Past this long without Redis, link- and certificate-protected requests get 503 (ms). */
  max_staleness_ms: number
  /** After SIGTERM, /readyz answers 503 this long before the listeners close (ms), so balancers move away. */
  drain_delay_ms: number
  /**
   * How long a lease on a hostname several agents' policies admit lasts without renewal (ms); the
   * owning agent's relays renew it every third of this while the agent holds a link.
   */
  lease_ttl_ms: number
  /**
   * mTLS on listen.peer (PEM files): this relay's certificate (it serves and dials with it, so it
   * needs serverAuth and clientAuth and must name advertise.peer's host) and the CA that issued
   * every member's. Null: plain HTTP, requests still signed with the HMAC.
   */
  peer_tls: { cert: string; key: string; ca: string } | null
}

export const CLUSTER_DEFAULTS = { max_staleness_ms: 5_000, drain_delay_ms: 2_000, lease_ttl_ms: 10_000 } as const

/** Member ids: what logs, Redis keys and agents' link lists show. */
export const MEMBER_ID = /^[a-z0-9][a-z0-9_-]{0,31}$/
/** The shared secret file must hold at least this many bytes. */
export const MIN_CLUSTER_SECRET_BYTES = 32
const MAX_SECRET_FILE_BYTES = 4096

function url(protocols: readonly string[], what: string) {
  return convert((v) => {
    const text = requireString(v, what)
    let parsed: URL
    try {
      parsed = new URL(text)
    } catch {
      throw new Error(`${JSON.stringify(text)} is not a URL (expected ${what})`)
    }
    if (!protocols.includes(parsed.protocol)) throw new Error(`expected ${what}, got ${JSON.stringify(text)}`)
    // A space-free form: agents receive the list as `id=url` words.
    if (/\s/.test(text)) throw new Error(`${JSON.stringify(text)} contains white space`)
    return parsed.toString().replace(/\/$/, '')
  })
}

/** The secret file exists, is a regular file and holds enough bytes; its content is read at start. */
export function checkSecretFile(file: string): string {
  const fd = openConfigFile(file)
  try {
    const buf = Buffer.alloc(MAX_SECRET_FILE_BYTES + 1)
    const n = readSync(fd, buf, 0, buf.length, 0)
    const text = buf.subarray(0, n).toString('utf8').trim()
    if (n > MAX_SECRET_FILE_BYTES) throw new Error(`${file} is larger than ${MAX_SECRET_FILE_BYTES} bytes`)
    if (Buffer.byteLength(text) < MIN_CLUSTER_SECRET_BYTES) throw new Error(`${file} holds fewer than ${MIN_CLUSTER_SECRET_BYTES} bytes (make one with: openssl rand -hex 32 > ${file})`)
  } finally {
    closeSync(fd)
  }
  return file
}

export function clusterSection(ctx: SchemaContext) {
  return strict({
    id: z.string().regex(MEMBER_ID, { error: 'use 1-32 lowercase letters, digits, "-" or "_", starting with a letter or digit' }),
    redis: url(['redis:', 'rediss:'], 'a redis:// or rediss:// URL'),
    secret_file: convert((v) => checkSecretFile(resolveConfigPath(v, ctx.baseDir, ctx.env))),
    advertise: strict({
      agents: url(['ws:', 'wss:'], 'a ws:// or wss:// URL agents dial'),
      peer: url(['http:', 'https:'], 'an http:// or https:// URL of listen.peer as other relays reach it'),
    }),
    max_staleness_ms: z.number().int().min(1_000).max(3_600_000).default(CLUSTER_DEFAULTS.max_staleness_ms),
    drain_delay_ms: z.number().int().min(0).max(600_000).default(CLUSTER_DEFAULTS.drain_delay_ms),
    lease_ttl_ms: z.number().int().min(1_000).max(600_000).default(CLUSTER_DEFAULTS.lease_ttl_ms),
    peer_tls: strict({ cert: pemFile(ctx), key: pemFile(ctx), ca: pemFile(ctx) }).nullable().default(null),
  }).nullable().default(null)
}
