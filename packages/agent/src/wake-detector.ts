/**
 * Notices that the process did not run for a while (laptop sleep, SIGSTOP): a 1 s interval timer
 * that fires late by more than `gapMs` means the clock jumped. The supervisor then probes the
 * relay at once instead of waiting for the heartbeat timeout (SECURITY.md F5).
 */
export const WAKE_CHECK_INTERVAL_MS = 1_000
export const WAKE_GAP_MS = 5_000

export interface WakeDetectorOptions {
  onWake: (gapMs: number) => void
  intervalMs?: number
  gapMs?: number
  now?: () => number
}

/** Starts the detector; returns a stop function. The timer never keeps the process alive. */
export function startWakeDetector(options: WakeDetectorOptions): () => void {
  const intervalMs = options.intervalMs ?? WAKE_CHECK_INTERVAL_MS
  const gapMs = options.gapMs ?? WAKE_GAP_MS
  const now = options.now ?? Date.now
  let last = now()
  const timer = setInterval(() => {
    const current = now()
    const elapsed = current - last
    last = current
    if (elapsed - intervalMs > gapMs) options.onWake(elapsed - intervalMs)
  }, intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}
