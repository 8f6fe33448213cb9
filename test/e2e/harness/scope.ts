/**
 * The part of a tap Test the harness uses. The benchmark runner, which has no tap test, passes its
 * own implementation, so the same helpers start its relay, agent and origin.
 */
export interface Scope {
  readonly name: string
  /** Runs fn when the scope ends (tap: in reverse order of registration). */
  teardown(fn: () => unknown): void
  /** False once anything in the scope failed (then child logs are printed). */
  passing(): boolean
  /** A fresh directory removed when the scope ends. */
  testdir(): string
}
