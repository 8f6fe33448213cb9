import { promises as dns } from 'node:dns'
import type { Socket } from 'node:net'
import { networkInterfaces } from 'node:os'
import type { Duplex } from 'node:stream'
import { PorchlightError, type ErrorCode } from '@porchlight/shared/errors'
import type { Logger } from '@porchlight/shared/log'
import { DialAbortedError, dialTcp, isSpecialAddress, parseIp, pipeBoth } from '@porchlight/shared/net'
import { writeHead, type ForwardHead } from '@porchlight/shared/protocol'
import { checkDestination, matchDestination, type OutboundRule } from '../agents/outbound-policy.js'
import type { ForwardResult } from '../admin/metrics.js'

/** Resolves a name to every address it has (one lookup per stream open). */
export type Lookup = (host: string) => Promise<string[]>

export interface ForwardContext {
  agent: string
  rules: readonly OutboundRule[]
  log: Logger
  /** Injectable resolver (tests, SECURITY D2); default: dns.lookup with all: true. */
  lookup?: Lookup
  /** Addresses the relay listens on; 0.0.0.0 / :: stand for every local interface address. */
  relayOwnAddresses: ReadonlySet<string>
  /** Budget for the lookup and for the TCP connect, each. */
  connectTimeoutMs?: number
  /** Connection results and bytes (`/metrics`). */
  meters?: ForwardMeter
}

/** What a forward reports to the metrics. */
export interface ForwardMeter {
  result(agent: string, result: ForwardResult): void
  closed(agent: string, bytesIn: number, bytesOut: number): void
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000

/**
 * One outbound forward stream opened by an agent: check the destination against the agent's
 * policy (on EVERY open), resolve the name once, check every address, dial the checked address
 * itself (no second lookup can rebind it), answer {t:'ok'} and pipe raw bytes both ways.
 * Refusals and dial failures answer {t:'error', code, message} and end the stream.
 * Resolves once the stream is answered; never rejects.
 */
export async function handleForwardStream(stream: Duplex, head: ForwardHead, ctx: ForwardContext): Promise<void> {
  const destination = `${head.host}:${head.port}`
  const log = ctx.log.child({ agent: ctx.agent, destination })
  const timeoutMs = ctx.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
  stream.on('error', (err) => log.debug({ err }, 'forward stream error'))

  const refuse = (code: ErrorCode, args: Array<string | number>, reason: string): void => {
    const message = new PorchlightError(code, args).message
    log.warn({ code, reason }, 'forward refused')
    ctx.meters?.result(ctx.agent, forwardResult(code))
    answerError(stream, code, message)
  }

  try {
    const match = matchDestination(head.host, head.port, ctx.rules)
    if (!match.ok) return refuse(match.code, [destination, ctx.agent], match.reason)

    let addresses: string[]
    if (match.kind === 'ip') {
      addresses = [match.address]
    } else {
      try {
        addresses = await withTimeout((ctx.lookup ?? defaultLookup)(match.name), timeoutMs, 'lookup')
      } catch (err) {
        return refuse('PL_ERR_DNS_FAILED', [match.name, errorText(err)], `lookup failed: ${errorText(err)}`)
      }
    }
    const verdict = checkDestination(head.host, head.port, addresses, ctx.rules, expandOwnAddresses(ctx.relayOwnAddresses))
    if (!verdict.ok) return refuse(verdict.code, [destination, ctx.agent], verdict.reason)
    if (stream.destroyed) return
    await dial(stream, verdict.addresses, head.port, timeoutMs, log, refuse, destination, ctx)
  } catch (err) {
    log.error({ err }, 'forward failed')
    ctx.meters?.result(ctx.agent, 'error')
    stream.destroy()
  }
}

/**
 * Dials the checked addresses in turn (happy-eyeballs order) until one connects, within one
 * timeout budget for all of them. Only addresses the policy passed are ever dialled.
 */
async function dial(
  stream: Duplex,
  addresses: readonly string[],
  port: number,
  timeoutMs: number,
  log: Logger,
  refuse: (code: ErrorCode, args: Array<string | number>, reason: string) => void,
  destination: string,
  ctx: ForwardContext,
): Promise<void> {
  const started = Date.now()
  const failures: string[] = []
  let socket: Socket | null = null
  let address = ''
  for (const candidate of addresses) {
    const left = timeoutMs - (Date.now() - started)
    if (left <= 0) break
    try {
      // The checked address is an IP literal, so net.connect does no DNS lookup of its own.
      // abortOn: the agent gave up while we were dialling; drop the half-made connection.
      socket = await dialTcp({ host: candidate, port }, { timeoutMs: left, abortOn: stream, label: destination })
      address = candidate
      break
    } catch (err) {
      if (err instanceof DialAbortedError) return
      if (!(err instanceof PorchlightError)) throw err
      if (err.code === 'PL_ERR_DIAL_TIMEOUT') {
        failures.push(`${candidate} timed out`)
        continue
      }
      const cause = err.cause as NodeJS.ErrnoException
      failures.push(`${candidate} ${cause.code ?? cause.message}`)
      log.debug({ address: candidate, reason: cause.code ?? cause.message }, 'forward address failed; trying the next')
    }
  }
  if (socket === null) {
    if (failures.length === 0 || failures.every((f) => f.endsWith('timed out'))) {
      return refuse('PL_ERR_DIAL_TIMEOUT', [destination], `no connection after ${timeoutMs} ms (${failures.join(', ') || 'no attempt'})`)
    }
    const reason = failures[failures.length - 1]!.split(' ').slice(1).join(' ')
    return refuse('PL_ERR_DIAL_FAILED', [destination, reason], `connect failed: ${failures.join(', ')}`)
  }
  const connected = socket
  connected.on('error', (err) => log.debug({ err }, 'forward socket error'))
  writeHead(stream, { t: 'ok' })
  ctx.meters?.result(ctx.agent, 'ok')
  log.debug({ address, tried: failures.length + 1 }, 'forward open')
  pipeBoth(stream, connected, (err) => {
    const fields = { address, bytesOut: connected.bytesWritten, bytesIn: connected.bytesRead, ms: Date.now() - started }
    ctx.meters?.closed(ctx.agent, fields.bytesIn, fields.bytesOut)
    if (err) log.info({ ...fields, err }, 'forward closed with error')
    else log.info(fields, 'forward')
  })
}

/** The metrics' name for a refusal's code. */
function forwardResult(code: ErrorCode): ForwardResult {
  if (code === 'PL_ERR_DNS_FAILED') return 'dns_failed'
  if (code === 'PL_ERR_DIAL_FAILED') return 'dial_failed'
  if (code === 'PL_ERR_DIAL_TIMEOUT') return 'dial_timeout'
  return 'denied'
}

/** Writes the error reply, ends our half and discards anything the agent still sends. */
function answerError(stream: Duplex, code: ErrorCode, message: string): void {
  if (stream.destroyed) return
  writeHead(stream, { t: 'error', code, message })
  stream.end()
  stream.resume()
}

async function defaultLookup(host: string): Promise<string[]> {
  const answers = await dns.lookup(host, { all: true, verbatim: true })
  return answers.map((a) => a.address)
}

/** A bind on 0.0.0.0 or :: means every interface address belongs to the relay. */
export function expandOwnAddresses(own: ReadonlySet<string>): Set<string> {
  const out = new Set(own)
  const wildcard = [...own].some((a) => {
    const ip = parseIp(a)
    return ip !== null && ip.range() === 'unspecified'
  })
  if (!wildcard) return out
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      // Special-range interface addresses are refused anyway; keep the set to the ones that matter.
      if (!isSpecialAddress(info.address)) out.add(info.address)
    }
  }
  return out
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} timed out after ${timeoutMs} ms`)), timeoutMs)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (err: unknown) => {
        clearTimeout(timer)
        reject(err instanceof Error ? err : new Error(String(err)))
      },
    )
  })
}

function errorText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown }
  return typeof e?.code === 'string' ? e.code : typeof e?.message === 'string' ? e.message : String(err)
}
