import type { z } from 'zod'
import { validate, unknownKeyMessage } from './fields.js'
import { describe, type IssueList } from './issues.js'

/**
 * Validates a config document one top-level key at a time, so a broken section does not hide the
 * others' issues and cross-key checks can still run on every section that did validate.
 * An empty document counts as an empty mapping (every key at its default).
 */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype'])
const MAX_SCAN_DEPTH = 32

export type SectionOutputs<S extends Record<string, z.ZodType>> = { [K in keyof S]?: z.output<S[K]> }

export function validateSections<S extends Record<string, z.ZodType>>(value: unknown, shape: S, issues: IssueList): SectionOutputs<S> {
  const out: SectionOutputs<S> = {}
  const doc = value === null || value === undefined ? {} : value
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    issues.add([], `expected a mapping of keys, got ${describe(doc)}`)
    return out
  }
  const known = Object.keys(shape)
  flagPrototypeKeys(doc, [], issues)
  for (const key of Object.keys(doc)) {
    if (!Object.hasOwn(shape, key) && !PROTOTYPE_KEYS.has(key)) issues.add([key], unknownKeyMessage(key, known))
  }
  for (const key of known as Array<keyof S & string>) {
    const raw = Object.hasOwn(doc, key) ? (doc as Record<string, unknown>)[key] : undefined
    const schema = shape[key]
    if (schema === undefined) continue
    const parsed = validate(schema, raw, [key], issues)
    if (parsed !== undefined) out[key] = parsed
  }
  return out
}

/**
 * Values handed to parse*Config directly (not through the YAML reader, which already refuses
 * them) may carry own "__proto__" keys, e.g. from JSON.parse; zod would drop some silently.
 */
function flagPrototypeKeys(value: unknown, path: Array<string | number>, issues: IssueList): void {
  if (typeof value !== 'object' || value === null || path.length > MAX_SCAN_DEPTH) return
  for (const [key, child] of Object.entries(value)) {
    const childPath = [...path, Array.isArray(value) ? Number(key) : key]
    if (PROTOTYPE_KEYS.has(key)) issues.add(childPath, `key ${JSON.stringify(key)} is not allowed`)
    else flagPrototypeKeys(child, childPath, issues)
  }
}
