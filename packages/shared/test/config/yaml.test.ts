import t from 'tap'
import { parseYamlConfig, MAX_DEPTH } from '../../src/config/yaml.js'

/** Runs the parser and returns the thrown error's code and message ('' when it did not throw). */
function fail(text: string): { code: string; message: string } {
  try {
    parseYamlConfig(text, 'relay.yaml')
  } catch (err) {
    const e = err as { code: string; message: string }
    return { code: e.code, message: e.message }
  }
  return { code: '', message: '' }
}

t.test('plain documents parse to plain objects', (t) => {
  const { value, warnings } = parseYamlConfig('domain: a.test\nlisten:\n  public: :80\n  admin: false\nlist: [1, "2-3"]\n', 'relay.yaml')
  t.same(value, { domain: 'a.test', listen: { public: ':80', admin: false }, list: [1, '2-3'] })
  t.same(warnings, [])
  t.equal(Object.getPrototypeOf(value), Object.prototype)
  t.equal(parseYamlConfig('', 'x.yaml').value, null, 'an empty file is null')
  t.same(parseYamlConfig('on: yes\n', 'x.yaml').value, { on: 'yes' }, 'YAML 1.2: yes/on are strings')
  t.end()
})

t.test('syntax errors read file:line:col: message (SECURITY H1)', (t) => {
  const cases: Array<[string, string]> = [
    ['a: 1\nb: 2\na: 3\n', 'relay.yaml:3:1: Map keys must be unique'],
    ['a:\n\tb: 1\n', 'relay.yaml:2:1: Tabs are not allowed as indentation'],
    ['a: 1\nb: "unclosed\nc: 2\n', 'relay.yaml:4:1: Missing closing "quote'],
    ['a: 1\n---\nb: 2\n', 'relay.yaml:2:1: a config file holds one YAML document; remove the "---" separator'],
  ]
  for (const [text, want] of cases) {
    const err = fail(text)
    t.equal(err.code, 'PL_ERR_CONFIG_YAML', want)
    t.equal(err.message.split('\n')[0], want)
  }
  t.end()
})

t.test('hostile YAML is rejected or bounded (SECURITY H9)', (t) => {
  const proto = fail('listen:\n  __proto__: {x: 1}\n')
  t.equal(proto.message, 'relay.yaml:2:3: key "__proto__" is not allowed')
  t.equal(fail('constructor: {prototype: {x: 1}}\n').message, 'relay.yaml:1:1: key "constructor" is not allowed')
  t.equal(fail('<<: {__proto__: {x: 1}}\n').message, 'relay.yaml:1:6: key "__proto__" is not allowed')
  t.equal(fail('? [a, b]\n: c\n').message, 'relay.yaml:1:3: keys must be plain strings')
  t.equal(fail('a: &k x\n*k : y\n').message, 'relay.yaml:2:1: keys must be plain strings')
  t.equal(({} as Record<string, unknown>)['x'], undefined, 'Object.prototype untouched')

  // Billion laughs: 9 levels of 9 aliases each.
  let bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
  let prev = 'a'
  for (let i = 0; i < 9; i++) {
    bomb += `b${i}: &b${i} [${Array(9).fill(`*${prev}`).join(', ')}]\n`
    prev = `b${i}`
  }
  const started = performance.now()
  const laughs = fail(bomb)
  t.equal(laughs.code, 'PL_ERR_CONFIG_YAML')
  t.match(laughs.message, /^relay\.yaml:2:\d+: too many alias expansions \(limit 100\)/)
  t.ok(performance.now() - started < 2000, 'alias bomb rejected quickly')

  const flow = fail('a: ' + '['.repeat(5000) + ']'.repeat(5000) + '\n')
  t.equal(flow.code, 'PL_ERR_CONFIG_YAML')
  let block = ''
  for (let i = 0; i < 5000; i++) block += ' '.repeat(i) + 'k:\n'
  t.equal(fail(block).code, 'PL_ERR_CONFIG_YAML', '5000-deep block nesting')
  const deep = fail('a: ' + '['.repeat(MAX_DEPTH) + ']'.repeat(MAX_DEPTH) + '\n')
  t.match(deep.message, /nesting deeper than 32 levels/)
  t.doesNotThrow(() => parseYamlConfig('a: ' + '['.repeat(MAX_DEPTH - 2) + ']'.repeat(MAX_DEPTH - 2) + '\n', 'ok.yaml'), 'depth 31 is fine')

  // Found by measurement: these took the yaml parser seconds, or ran it out of heap, before the
  // token pre-check (yaml-depth.ts) bounded nesting.
  const startedDeep = performance.now()
  t.equal(fail('- '.repeat(500_000) + 'x\n').message, 'relay.yaml:1:127: nesting deeper than 32 levels')
  t.equal(fail('['.repeat(1024 * 1024 - 1)).message, 'relay.yaml:1:64: nesting deeper than 32 levels')
  t.ok(performance.now() - startedDeep < 2000, 'megabyte-sized nesting rejected quickly')

  const wide = fail('[' + Array(100_001).fill('0').join(',') + ']\n')
  t.match(wide.message, /more than 100000 nodes/)
  t.end()
})

t.test('a few aliases are fine; merge keys are not special (YAML 1.2)', (t) => {
  const { value } = parseYamlConfig('a: &x [1, 2]\nb: *x\nc: {<<: {d: 1}}\n', 'x.yaml')
  t.same(value, { a: [1, 2], b: [1, 2], c: { '<<': { d: 1 } } })
  t.end()
})

t.test('parser warnings come back with positions', (t) => {
  const { value, warnings } = parseYamlConfig('a: !!js/function "x"\n', 'x.yaml')
  t.same(value, { a: 'x' })
  t.equal(warnings.length, 1)
  t.match(warnings[0], /^x\.yaml:1:4: Unresolved tag: tag:yaml\.org,2002:js\/function$/)
  t.end()
})
