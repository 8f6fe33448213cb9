import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml'
import { PorchlightError } from '../errors.js'
import { findExcessiveNesting } from './yaml-depth.js'

/**
 * YAML text -> plain JS value, with the defences of SECURITY.md H9: duplicate keys are errors,
 * alias expansion is capped (billion laughs), nesting depth and node count are capped, and keys
 * that could reach Object.prototype ("__proto__", "constructor", "prototype") or that are not
 * plain scalars are refused before any JS object is built. Errors read `file:line:col: message`.
 */
export const MAX_ALIAS_COUNT = 100
export const MAX_DEPTH = 32
export const MAX_NODES = 100_000
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

export interface YamlPosition {
  line: number
  col: number
  message: string
}

export interface ParsedYaml {
  value: unknown
  /** Non-fatal notes from the YAML parser (e.g. unresolved tags), as `file:line:col: message`. */
  warnings: string[]
}

export function parseYamlConfig(text: string, file: string): ParsedYaml {
  // Bound nesting on the flat token stream first: the parser itself recurses (see yaml-depth.ts).
  const deepAt = findExcessiveNesting(text, MAX_DEPTH * 2)
  if (deepAt !== null) throw yamlError(file, [{ ...positionOf(text, deepAt), message: `nesting deeper than ${MAX_DEPTH} levels` }])
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, lineCounter })
  if (doc.errors.length > 0) {
    throw yamlError(file, doc.errors.map((e) => ({
      line: e.linePos?.[0].line ?? 1,
      col: e.linePos?.[0].col ?? 1,
      // yaml's own advice here names its API; say what to do to the file instead.
      message: e.code === 'MULTIPLE_DOCS' ? 'a config file holds one YAML document; remove the "---" separator' : plainMessage(e.message),
    })))
  }
  const at = (node: Node | null | undefined, message: string): YamlPosition => {
    const pos = lineCounter.linePos(node?.range?.[0] ?? 0)
    return { line: pos.line, col: pos.col, message }
  }
  const problem = inspectTree(doc.contents, at)
  if (problem !== null) throw yamlError(file, [problem])
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT })
  } catch (err) {
    // yaml throws a ReferenceError when aliases expand past maxAliasCount.
    throw yamlError(file, [at(firstAlias(doc.contents), `too many alias expansions (limit ${MAX_ALIAS_COUNT}): ${(err as Error).message}`)], err)
  }
  const warnings = doc.warnings.map((w) => `${file}:${w.linePos?.[0].line ?? 1}:${w.linePos?.[0].col ?? 1}: ${plainMessage(w.message)}`)
  return { value, warnings }
}

/** Depth-first walk with an explicit stack, so hostile nesting cannot exhaust the call stack. */
function inspectTree(root: unknown, at: (node: Node | null | undefined, message: string) => YamlPosition): YamlPosition | null {
  const stack: Array<{ node: unknown; depth: number }> = [{ node: root, depth: 1 }]
  let count = 0
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!
    if (++count > MAX_NODES) return at(node as Node, `document has more than ${MAX_NODES} nodes`)
    if (depth > MAX_DEPTH) return at(node as Node, `nesting deeper than ${MAX_DEPTH} levels`)
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue
        const key = pair.key
        if (key !== null && !isScalar(key)) return at(key as Node, 'keys must be plain strings')
        const name = isScalar(key) ? String(key.value) : ''
        if (FORBIDDEN_KEYS.has(name)) return at(key as Node, `key ${JSON.stringify(name)} is not allowed`)
        stack.push({ node: pair.value, depth: depth + 1 })
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push({ node: item, depth: depth + 1 })
    }
  }
  return null
}

/** The alias nearest the top of the file, to point the "too many aliases" error at. */
function firstAlias(root: unknown): Node | null {
  const stack: unknown[] = [root]
  let first: Node | null = null
  while (stack.length > 0) {
    const node = stack.pop()
    if (isAlias(node) && (first === null || (node.range?.[0] ?? 0) < (first.range?.[0] ?? 0))) first = node
    if (isMap(node)) for (const pair of node.items) stack.push(isPair(pair) ? pair.value : null)
    else if (isSeq(node)) stack.push(...node.items)
  }
  return first
}

function positionOf(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset)
  const lineStart = before.lastIndexOf('\n') + 1
  return { line: before.split('\n').length, col: offset - lineStart + 1 }
}

/** yaml's pretty messages append " at line L, column C:" and a code excerpt; we print our own position. */
function plainMessage(message: string): string {
  return message.replace(/ at line \d+, column \d+:?[\s\S]*$/, '').trim()
}

function yamlError(file: string, problems: YamlPosition[], cause?: unknown): PorchlightError {
  const [first, ...rest] = problems
  const where = `${file}:${first?.line ?? 1}:${first?.col ?? 1}`
  const more = rest.map((p) => `\n${file}:${p.line}:${p.col}: ${p.message}`).join('')
  return new PorchlightError('PL_ERR_CONFIG_YAML', [where, `${first?.message ?? 'invalid YAML'}${more}`], { cause, details: problems })
}
