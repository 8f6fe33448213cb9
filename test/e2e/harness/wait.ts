/**
 * Calls probe every intervalMs until it returns a value `done` accepts, or timeoutMs passes.
 * Resolves with the last value and the time it took; never throws for a slow system, so the
 * caller's assertion on the value shows what was last seen.
 */
export async function pollUntil<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  opts: { timeoutMs: number; intervalMs?: number },
): Promise<{ value: T; ms: number; ok: boolean }> {
  const started = Date.now()
  const intervalMs = opts.intervalMs ?? 50
  for (;;) {
    const value = await probe()
    const ms = Date.now() - started
    if (done(value)) return { value, ms, ok: true }
    if (ms >= opts.timeoutMs) return { value, ms, ok: false }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}
