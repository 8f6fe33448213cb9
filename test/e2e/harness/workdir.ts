import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import type { Scope } from './scope.js'

// t.testdir() wipes the directory on every call, so each test creates it once and children get
// their own subdirectories (a relay and two agents of one test never share files).
const created = new WeakMap<Scope, string>()

/** A fresh directory for one child process of this test, removed by tap when the test ends. */
export function childDir(t: Scope, prefix: string): string {
  let root = created.get(t)
  if (root === undefined) {
    root = t.testdir()
    created.set(t, root)
  }
  return mkdtempSync(join(root, `${prefix}-`))
}
