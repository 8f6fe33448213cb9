import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { PorchlightError } from '../errors.js'

export interface DialTarget {
  host: string
  port: number
}

export interface DialOptions {
  /** Budget for the TCP connect; past it the dial rejects with PL_ERR_DIAL_TIMEOUT. */
  timeoutMs: number
  /** Abandon the dial when this closes first (the stream the socket was dialled for went away). */
  abortOn?: Duplex
  /** How the target is named in error messages; default `host:port`. */
  label?: string
}

/** Rejection of a dial abandoned because `abortOn` closed; nobody is left to answer. */
export class DialAbortedError extends Error {
  readonly code = 'ERR_DIAL_ABORTED'
  constructor(label: string) {
    super(`dial to ${label} abandoned: the stream closed first`)
    this.name = 'DialAbortedError'
  }
}

/**
 * Dials `target` (allowHalfOpen, so pipeBoth keeps half-closes; Nagle off once connected).
 * Resolves with the connected socket with no listeners of ours left on it: the caller attaches
 * its own 'error' listener as soon as it resolves. Rejects with PorchlightError
 * PL_ERR_DIAL_FAILED (cause: the socket error), PL_ERR_DIAL_TIMEOUT, or DialAbortedError; the
 * socket is destroyed in each case.
 */
export function dialTcp(target: DialTarget, opts: DialOptions): Promise<Socket> {
  const label = opts.label ?? `${target.host}:${target.port}`
  const abortOn = opts.abortOn
  return new Promise((resolve, reject) => {
    let socket: Socket
    try {
      socket = connect({ host: target.host, port: target.port, allowHalfOpen: true })
    } catch (err) {
      // Bad arguments (e.g. a port out of range) throw synchronously; same answer as a refused dial.
      const e = err as NodeJS.ErrnoException
      reject(new PorchlightError('PL_ERR_DIAL_FAILED', [label, e.code ?? e.message], { cause: err }))
      return
    }
    let settled = false
    const settle = (): void => {
      settled = true
      clearTimeout(timer)
      abortOn?.off('close', onAbort)
      socket.off('connect', onConnect)
    }
    const fail = (err: Error): void => {
      settle()
      socket.destroy()
      reject(err)
    }
    const timer = setTimeout(() => {
      if (!settled) fail(new PorchlightError('PL_ERR_DIAL_TIMEOUT', [label]))
    }, opts.timeoutMs)
    const onAbort = (): void => {
      if (!settled) fail(new DialAbortedError(label))
    }
    // Stays attached after a failure so a late error on the dead socket is never uncaught.
    const onError = (err: NodeJS.ErrnoException): void => {
      if (!settled) fail(new PorchlightError('PL_ERR_DIAL_FAILED', [label, err.code ?? err.message], { cause: err }))
    }
    const onConnect = (): void => {
      if (settled) return
      settle()
      socket.off('error', onError)
      socket.setNoDelay(true)
      resolve(socket)
    }
    abortOn?.once('close', onAbort)
    socket.on('error', onError)
    socket.once('connect', onConnect)
  })
}
