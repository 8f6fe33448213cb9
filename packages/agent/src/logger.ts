import { createLogger, type Logger } from '@porchlight/shared/log'
import type { LogTail } from './terminal-view.js'

/** `--log`: auto (pretty on a terminal, else JSON), json, or pretty. */
export type LogFormat = 'auto' | 'json' | 'pretty'

/**
 * The agent's logger. Logs go to STDERR: stdout carries only user-facing lines (`Forwarding …`)
 * that scripts and the e2e harness parse. Pretty output only when both stdout and stderr are a
 * terminal (a person is watching; pino-pretty then writes to the terminal through stdout), or
 * with `--log pretty`; `--log json` (or PORCHLIGHT_LOG_FORMAT=json) forces JSON. With the live
 * terminal view up, the logs go to its tail instead (it shows warnings and errors).
 */
export function buildAgentLogger(options: { debug?: boolean; env?: NodeJS.ProcessEnv; format?: LogFormat; tail?: LogTail | null } = {}): Logger {
  const env = options.env ?? process.env
  const level = options.debug === true ? 'debug' : env['PORCHLIGHT_LOG_LEVEL'] ?? 'info'
  if (options.tail != null) return createLogger({ name: 'porchlight', level, pretty: false, destination: options.tail })
  const format = options.format ?? 'auto'
  const interactive = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true && process.stderr.isTTY === true && env['PORCHLIGHT_LOG_FORMAT'] !== 'json')
  if (interactive) return createLogger({ name: 'porchlight', level, pretty: true })
  return createLogger({ name: 'porchlight', level, pretty: false, destination: process.stderr })
}

/** The live screen replaces plain lines only on a terminal, and never when JSON logs are asked for. */
export function wantsTerminalView(format: LogFormat, env: NodeJS.ProcessEnv = process.env): boolean {
  return format === 'auto' && process.stdout.isTTY === true && env['PORCHLIGHT_LOG_FORMAT'] !== 'json'
}
