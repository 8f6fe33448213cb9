import { createLogger, type Logger } from '@porchlight/shared/log'

/**
 * The agent's logger. Logs go to STDERR: stdout carries only user-facing lines (`Forwarding …`)
 * that scripts and the e2e harness parse. Pretty output only when both stdout and stderr are a
 * terminal (a person is watching; pino-pretty then writes to the terminal through stdout).
 */
export function buildAgentLogger(options: { debug?: boolean; env?: NodeJS.ProcessEnv } = {}): Logger {
  const env = options.env ?? process.env
  const level = options.debug === true ? 'debug' : env['PORCHLIGHT_LOG_LEVEL'] ?? 'info'
  const interactive = process.stdout.isTTY === true && process.stderr.isTTY === true && env['PORCHLIGHT_LOG_FORMAT'] !== 'json'
  if (interactive) return createLogger({ name: 'porchlight', level, pretty: true })
  return createLogger({ name: 'porchlight', level, pretty: false, destination: process.stderr })
}
