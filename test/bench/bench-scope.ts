import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Scope } from '../e2e/harness/scope.js'

/** A harness Scope outside tap: teardowns run by close(), newest first, like tap's. */
export class BenchScope implements Scope {
  readonly name = 'bench'
  private readonly teardowns: Array<() => unknown> = []
  private dir: string | undefined
  private failed = false

  teardown(fn: () => unknown): void {
    this.teardowns.push(fn)
  }

  passing(): boolean {
    return !this.failed
  }

  /** Marks the run failed, so child logs are printed when it closes. */
  fail(): void {
    this.failed = true
  }

  testdir(): string {
    this.dir ??= mkdtempSync(join(tmpdir(), 'porchlight-bench-'))
    return this.dir
  }

  async close(): Promise<void> {
    for (const fn of this.teardowns.reverse()) await fn()
    this.teardowns.length = 0
    if (this.dir) rmSync(this.dir, { recursive: true, force: true })
  }
}
