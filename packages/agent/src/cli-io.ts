import { formatForCli } from '@porchlight/shared/errors'

/** User-facing output of the CLI: stdout for results (`Forwarding …`, URLs), stderr for problems. */
export interface CliIo {
  out(line: string): void
  err(line: string): void
}

export const processIo: CliIo = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
}

/** One `CODE: message` line (stack only with --debug). */
export function reportError(io: CliIo, err: unknown, debug: boolean): void {
  io.err(formatForCli(err, debug))
}

/** Exit code for an error that ends a command: the table's `exit` for ours, 1 otherwise. */
export function exitCodeOf(err: unknown): number {
  const exit = (err as { exit?: unknown } | null)?.exit
  return typeof exit === 'number' && Number.isInteger(exit) ? exit : 1
}
