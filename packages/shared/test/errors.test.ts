import { readFileSync } from 'node:fs'
import t from 'tap'
import { codes, formatForCli, PorchlightError, type ErrorCode } from '../src/errors.js'

/** docs/errors.md and the PL_ERR_* table must match both ways (STYLE.md, Errors). */
const docs = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8')
const headings = [...docs.matchAll(/^## (.+)$/gm)].map((m) => (m[1] ?? '').trim())
const tableCodes = Object.keys(codes)

t.test('every code in errors.ts has a heading in docs/errors.md', (t) => {
  const missing = tableCodes.filter((code) => !headings.includes(code))
  t.same(missing, [], 'codes without a `## CODE` heading')
  t.end()
})

t.test('every heading in docs/errors.md is a code in errors.ts, once', (t) => {
  t.same(headings.filter((h) => !(h in codes)), [], 'headings that are not codes')
  t.same(headings.filter((h, i) => headings.indexOf(h) !== i), [], 'duplicate headings')
  t.equal(headings.length, tableCodes.length)
  t.end()
})

t.test('every heading is followed by a paragraph', (t) => {
  const sections = docs.split(/^## /m).slice(1)
  for (const section of sections) {
    const [heading = '', ...body] = section.split('\n')
    const text = body.join('\n').trim()
    t.ok(text.length >= 40, `${heading} has a paragraph (${text.length} chars)`)
  }
  t.end()
})

t.test('the table is well formed', (t) => {
  for (const [code, spec] of Object.entries(codes)) {
    t.match(code, /^PL_ERR_[A-Z0-9]+(?:_[A-Z0-9]+)*$/, code)
    t.equal(typeof spec.retry, 'boolean', `${code}.retry`)
    const s = spec as { exit?: number; status?: number }
    if (s.exit !== undefined) t.ok(Number.isInteger(s.exit) && s.exit > 0 && s.exit < 126, `${code}.exit`)
    if (s.status !== undefined) t.ok(Number.isInteger(s.status) && s.status >= 400 && s.status < 600, `${code}.status`)
  }
  t.end()
})

t.test('PorchlightError fills the template and prints one CLI line', (t) => {
  const code: ErrorCode = 'PL_ERR_CONFIG_READ'
  const err = new PorchlightError(code, ['relay.yaml', 'no such file'])
  t.equal(err.message, 'cannot read config relay.yaml: no such file')
  t.equal(err.exit, 1)
  t.equal(formatForCli(err), 'PL_ERR_CONFIG_READ: cannot read config relay.yaml: no such file')
  t.end()
})
