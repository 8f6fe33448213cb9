import { z } from 'zod'
import { describe, type IssueList, type PathSegment } from './issues.js'
import { suggestKey } from './suggest.js'

/**
 * The glue between zod and ConfigIssue: strict objects whose unknown-key message carries a
 * "did you mean", converters for values that need a real parser (addresses, hostnames), and a
 * validate() that turns every zod issue into `path: message`.
 */

type Shape = Record<string, z.ZodType>

/** A strict object whose unknown keys read `unknown key "x" (did you mean "y"?)`, one line per key. */
export function strict<S extends Shape>(shape: S): z.ZodObject<S, z.core.$strict> {
  const known = Object.keys(shape)
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? issue.keys.map((k) => unknownKeyMessage(k, known)).join('\n') : undefined),
  })
}

export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const hint = suggestKey(key, known)
  return hint === undefined ? `unknown key ${JSON.stringify(key)}` : `unknown key ${JSON.stringify(key)} (did you mean ${JSON.stringify(hint)}?)`
}

/** A value parsed by `parse`, whose thrown Error message becomes the issue message. */
export function convert<T>(parse: (value: unknown) => T): z.ZodPipe<z.ZodUnknown, z.ZodTransform<Awaited<T>, unknown>> {
  return z.unknown().transform((value, ctx) => {
    try {
      return parse(value) as Awaited<T>
    } catch (err) {
      ctx.issues.push({ code: 'custom', message: err instanceof Error ? err.message : String(err), input: value })
      return z.NEVER
    }
  })
}

/** Helper for converters: the value must be a non-empty string. */
export function requireString(value: unknown, what = 'a string'): string {
  if (value === undefined) throw new Error('required')
  if (typeof value !== 'string') throw new Error(`expected ${what}, got ${describe(value)}`)
  if (value.length === 0) throw new Error(`expected ${what}, got an empty string`)
  return value
}

/** A list whose entries are converted one by one (each bad entry is its own issue). */
export function listOf<T>(parse: (value: unknown) => T, maxEntries: number): z.ZodDefault<z.ZodArray<z.ZodPipe<z.ZodUnknown, z.ZodTransform<Awaited<T>, unknown>>>> {
  return z.array(convert(parse)).max(maxEntries).default([])
}

/** Runs `schema`, records every issue under `prefix`, returns the output or undefined. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, prefix: readonly PathSegment[], issues: IssueList): z.output<S> | undefined {
  const result = schema.safeParse(value, { error: messageFor })
  if (result.success) return result.data
  for (const issue of result.error.issues) addZodIssue(issue, prefix, issues)
  return undefined
}

function addZodIssue(issue: z.core.$ZodIssue, prefix: readonly PathSegment[], issues: IssueList): void {
  const path = [...prefix, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))]
  if (issue.code === 'unrecognized_keys') {
    // strict() put one line per key, in the same order as issue.keys.
    const lines = issue.message.split('\n')
    issue.keys.forEach((key, i) => issues.add([...path, key], lines[i] ?? `unknown key ${JSON.stringify(key)}`))
  } else if (issue.code === 'invalid_key') {
    const key = path[path.length - 1]
    issues.add(path, `invalid name ${JSON.stringify(String(key))}: ${issue.issues[0]?.message ?? 'not allowed'}`)
  } else {
    issues.add(path, issue.message)
  }
}

const NOUNS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  null: 'null',
}

/** Plain-English messages for zod's built-in checks (schema-level messages take precedence). */
function messageFor(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'required'
      return `expected ${NOUNS[issue.expected] ?? issue.expected}, got ${describe(issue.input)}`
    case 'too_small':
      return bound('at least', issue.minimum, issue.origin, issue.inclusive)
    case 'too_big':
      return bound('at most', issue.maximum, issue.origin, issue.inclusive)
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describe(issue.input)}`
    default:
      return undefined
  }
}

function bound(word: 'at least' | 'at most', limit: number | bigint, origin: string, inclusive = true): string {
  const n = inclusive ? limit : word === 'at least' ? `more than ${limit}` : `less than ${limit}`
  const limitText = inclusive ? `${word} ${n}` : String(n)
  if (origin === 'string') return `must be ${limitText} characters long`
  if (origin === 'array') return `must have ${limitText} entries`
  return `must be ${limitText}`
}
