import { startupDone } from '@porchlight/shared/heap'
import { formatAddress, type AgentConfig } from '@porchlight/shared/config'
import type { Logger } from '@porchlight/shared/log'
import { buildAgent, DEFAULT_GRACE_MS, type AgentDeps, type InspectEvent, type TunnelReadyEvent, type TunnelRejectedEvent } from '../agent.js'
import { exitCodeOf, reportError, type CliIo } from '../cli-io.js'
import { removeRuntimeFile, writeRuntimeFile, type RuntimeDeps } from '../runtime-file.js'
import { TerminalView, type LogTail, type ScreenOutput } from '../terminal-view.js'

export interface RunAgentOptions {
  config: AgentConfig
  log: Logger
  io: CliIo
  debug: boolean
  /** Quick modes: a rejected tunnel ends the process (exit 1); a busy inspect port is only a warning. */
  quick: boolean
  /** `up`: re-reads the config file on SIGHUP. */
  reload?: () => Promise<AgentConfig>
  /** Tests inject the signal source and the dialer. */
  signals?: NodeJS.EventEmitter
  dial?: AgentDeps['dial']
  graceMs?: number
  /** http tunnel ids whose public name the relay picks (quick share without --name). */
  relayPicksName?: ReadonlySet<string>
  /** `--link`: once the tunnel is published, create a share link of this lifetime and print it. */
  shareLink?: { expiresMs: number }
  /** stdout is a terminal: draw the live screen there instead of printing `Forwarding` lines. */
  view?: { out: ScreenOutput; tail: LogTail | null }
  /**
   * The config file this agent runs (see agentConfigPath): recorded with the status API's bound
   * address in a runtime file, so `status` / `link` find it on a fallback port. Absent: no file.
   */
  configFile?: string
  runtime?: RuntimeDeps
}

/** 128 + signal number, the shell's convention, for the "second signal: exit now" case. */
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 }

/**
 * Runs an agent until it is told to stop; resolves with the process exit code. Prints one
 * `Forwarding PUBLIC -> LOCAL` line per accepted tunnel (and per forward listener) on stdout.
 * SIGHUP reloads; SIGTERM/SIGINT drain for up to 10 s then exit 0; a second signal exits at once;
 * a fatal link error (bad token, rejected certificate) prints one line and exits 1.
 */
export function runAgent(options: RunAgentOptions): Promise<number> {
  const { config, log, io, debug, quick } = options
  const signals = options.signals ?? process
  const agent = buildAgent(config, {
    log,
    inspectOptional: quick,
    ...(options.view !== undefined ? { watchTraffic: true } : {}),
    ...(options.dial !== undefined ? { dial: options.dial } : {}),
    ...(options.relayPicksName !== undefined ? { relayPicksName: options.relayPicksName } : {}),
  })
  const view = options.view === undefined ? null : new TerminalView(options.view.out, agent, options.view.tail)
  // With the screen up, result lines join it and a problem first gives the terminal back.
  const out = (line: string): void => (view !== null ? view.note(line) : io.out(line))
  const err = (line: string): void => {
    view?.stop()
    io.err(line)
  }
  const screenIo: CliIo = { out, err }
  let runtimeFile: string | null = null
  const dropRuntimeFile = (): void => {
    if (runtimeFile !== null) removeRuntimeFile(runtimeFile)
    runtimeFile = null
  }
  return new Promise<number>((resolve) => {
    let finishing = false
    let stopping = false
    const finish = (code: number): void => {
      if (finishing) return
      finishing = true
      signals.off('SIGTERM', onStop)
      signals.off('SIGINT', onStop)
      signals.off('SIGHUP', onReload)
      process.off('exit', dropRuntimeFile)
      dropRuntimeFile()
      view?.stop()
      resolve(code)
    }
    const stopWith = (code: number, graceMs: number): void => {
      if (stopping) return
      stopping = true
      // Streams the relay opened before the signal may still wait, unread, in the link's socket
      // (the signal and the socket are ready in the same turn): accept them first, so they are
      // served rather than refused by the GoAway.
      setImmediate(() => agent.stop(graceMs).then(
        () => finish(code),
        (err: unknown) => {
          log.error({ err }, 'stop failed')
          finish(code === 0 ? 1 : code)
        },
      ))
    }
    const onStop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now')
        finish(SIGNAL_EXIT[signal] ?? 1)
        return
      }
      log.info({ signal, graceMs: options.graceMs ?? DEFAULT_GRACE_MS }, 'stopping')
      stopWith(0, options.graceMs ?? DEFAULT_GRACE_MS)
    }
    const onReload = (): void => {
      if (options.reload === undefined) {
        log.info('SIGHUP: nothing to reload in quick mode')
        return
      }
      log.info('SIGHUP: reloading config')
      options.reload().then(
        (next) => agent.reload(next),
        (err: unknown) => log.error({ err }, 'reload failed; keeping the running config'),
      ).catch((err: unknown) => log.error({ err }, 'reload failed'))
    }
    agent.on('tunnel', (t: TunnelReadyEvent) => {
      // The screen shows every URL itself.
      if (view === null) io.out(`Forwarding ${t.url} -> ${t.to}`)
      const share = options.shareLink
      if (share === undefined || t.kind !== 'http') return
      agent.request('link.create', { host: new URL(t.url).hostname, expires_ms: share.expiresMs }).then(
        (link) => out(`Share link ${(link as { url: string }).url} (expires ${(link as { expires_at: string }).expires_at})`),
        (e: unknown) => {
          reportError(screenIo, e, debug)
          stopWith(exitCodeOf(e), 0)
        },
      )
    })
    agent.on('inspect', (i: InspectEvent) => {
      if (i.fallback && view === null) io.out(`Status API ${i.url} (${i.wanted} is in use by another process)`)
      const bound = agent.inspectAddress
      if (options.configFile === undefined || finishing || bound === null) return
      try {
        dropRuntimeFile()
        runtimeFile = writeRuntimeFile({ pid: process.pid, config: options.configFile, inspect: formatAddress(bound) }, options.runtime)
        process.off('exit', dropRuntimeFile)
        process.once('exit', dropRuntimeFile)
      } catch (e) {
        log.warn({ err: e }, 'cannot write the runtime file (porchlight status finds this agent only on its configured port)')
      }
    })
    agent.on('forward', (t: TunnelReadyEvent) => {
      if (view === null) io.out(`Forwarding ${t.url} -> ${t.to}`)
    })
    agent.on('rejected', (r: TunnelRejectedEvent) => {
      if (!quick) return
      err(`${r.code}: ${r.message}`)
      stopWith(1, 0)
    })
    agent.once('connected', () => startupDone())
    agent.on('fatal', (e: unknown) => {
      reportError(screenIo, e, debug)
      stopWith(exitCodeOf(e), 0)
    })
    signals.on('SIGTERM', onStop)
    signals.on('SIGINT', onStop)
    signals.on('SIGHUP', onReload)
    agent.start().then(
      () => view?.start(),
      (e: unknown) => {
        reportError(screenIo, e, debug)
        stopWith(exitCodeOf(e), 0)
      },
    )
  })
}
