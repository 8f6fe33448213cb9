import { CST, Lexer } from 'yaml'

/**
 * A pre-check run on the token stream before the YAML parser builds anything. The yaml package
 * composes nested nodes recursively: a megabyte of "[" costs it seconds, and a line of 500,000
 * "- " exhausts the heap (measured with yaml 2.9). Its lexer is flat and linear, so we bound the
 * nesting there first.
 *
 * The estimate is conservative (it can only over-count): indentation levels open on the line +
 * block indicators (`- `, `? `, `: `) on the line + open flow collections. Real configs stay far
 * below the limit; the exact depth check happens afterwards on the parsed tree.
 */

// Lexer control characters that are not part of the source text.
const CONTROL_TOKENS = new Set(['\x02', '\x18', '\x1f'])
const BLOCK_INDICATORS = new Set(['seq-item-ind', 'explicit-key-ind', 'map-value-ind'])

/** Offset of the first token nested deeper than `limit`, or null. */
export function findExcessiveNesting(text: string, limit: number): number | null {
  const indents: number[] = []
  let offset = 0
  let flow = 0
  let lineStart = true
  let indent = 0
  let onLine = 0
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token)
    if (lineStart && type === 'space' && !token.includes('\n')) {
      indent = token.length
    } else if (type !== 'newline' && type !== 'space' && type !== 'comment' && !CONTROL_TOKENS.has(token)) {
      if (lineStart && flow === 0) {
        while (indents.length > 0 && (indents[indents.length - 1] ?? 0) > indent) indents.pop()
        if (indents.length === 0 || (indents[indents.length - 1] ?? 0) < indent) indents.push(indent)
      }
      lineStart = false
      if (type !== null && BLOCK_INDICATORS.has(type)) onLine++
      else if (type === 'flow-seq-start' || type === 'flow-map-start') flow++
      else if (type === 'flow-seq-end' || type === 'flow-map-end') flow = Math.max(0, flow - 1)
      if (indents.length + onLine + flow > limit) return offset
    }
    if (!CONTROL_TOKENS.has(token)) offset += token.length
    if (token.endsWith('\n')) {
      lineStart = true
      indent = 0
      onLine = 0
    }
  }
  return null
}
