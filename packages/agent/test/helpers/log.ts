import { Writable } from 'node:stream'
import { createLogger, type Logger } from '@porchlight/shared/log'

/** A logger that keeps its JSON lines in memory (tests assert on them, and stdout stays clean). */
export function memoryLogger(level = 'debug'): { log: Logger; lines: () => Array<Record<string, unknown>>; text: () => string } {
  const chunks: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'))
      cb()
    },
  })
  const log = createLogger({ name: 'test', level, pretty: false, destination: sink })
  const text = (): string => chunks.join('')
  const lines = (): Array<Record<string, unknown>> =>
    text().split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
  return { log, lines, text }
}
