import pino, { type Logger, type LoggerOptions } from 'pino'
import { formatForCli, plError } from './errors.js'

export type { Logger }

/** Paths pino must never print: credentials, cookies, share-link tokens. */
export const REDACT_PATHS = [
  'token', '*.token', 'authorization', '*.authorization', 'headers.authorization', 'req.headers.authorization',
  'cookie', '*.cookie', 'headers.cookie', 'req.headers.cookie', 'headers["set-cookie"]', 'password', '*.password',
  'password_hash', '*.password_hash', 'key', '*.key', 'share', '*.share',
]

export interface LoggerSettings {
  name: string
  level?: string
  /** Force pretty (true) or JSON (false); default: pretty only when stdout is a TTY. */
  pretty?: boolean
  /** Destination file descriptor or stream; default stdout. */
  destination?: pino.DestinationStream
}

/** The only place that constructs pino. Components take `log.child({ component })`. */
export function createLogger(settings: LoggerSettings): Logger {
  const level = settings.level ?? process.env['PORCHLIGHT_LOG_LEVEL'] ?? 'info'
  const options: LoggerOptions = {
    name: settings.name,
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { err: pino.stdSerializers.err },
    base: { pid: process.pid },
  }
  const pretty = settings.pretty ?? (process.stdout.isTTY === true && process.env['PORCHLIGHT_LOG_FORMAT'] !== 'json')
  if (settings.destination) return pino(options, settings.destination)
  if (pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } } })
  }
  return pino(options, boundedStdout())
}

/**
 * Log lines held while stdout cannot take them (a stuck journald or pipe reader). Beyond this the
 * newest lines are dropped rather than kept without limit (SECURITY rule 6), and one line on
 * stderr says so.
 */
export const MAX_BUFFERED_LOG_BYTES = 16 * 1024 * 1024

function boundedStdout(): pino.DestinationStream {
  const destination = pino.destination({ fd: 1, sync: false, maxLength: MAX_BUFFERED_LOG_BYTES })
  let warned = false
  destination.on('drop', () => {
    if (warned) return
    warned = true
    process.stderr.write(`${formatForCli(plError('PL_ERR_LOG_DROPPED', MAX_BUFFERED_LOG_BYTES))}\n`)
  })
  return destination
}

/** Removes the query string from a URL for logging (share tokens travel there). */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : `${url.slice(0, q)}?[redacted]`
}
