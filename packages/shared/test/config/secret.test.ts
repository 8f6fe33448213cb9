import { join } from 'node:path'
import t from 'tap'
import { isSecretReference, resolveSecret } from '../../src/config/index.js'
import { writeFiles } from './helpers.js'

t.test('resolveSecret reads literals, env: and file: references', (t) => {
  const dir = writeFiles(t.testdir(), { 's.txt': '\n  s3cret \n', 'big.txt': 'x'.repeat(64 * 1024 + 1) })
  t.equal(resolveSecret('literal-token'), 'literal-token')
  t.equal(resolveSecret('env:A', { env: { A: 'from-env' } }), 'from-env')
  t.equal(resolveSecret('file:s.txt', { baseDir: dir }), 's3cret')
  t.equal(resolveSecret(`file:${join(dir, 's.txt')}`), 's3cret')
  t.equal(resolveSecret('file:~/s.txt', { env: { HOME: dir } }), 's3cret')
  const cases: Array<[string, string]> = [
    ['env:A', 'cannot resolve secret env:A: environment variable A is not set'],
    ['env:9A', 'cannot resolve secret env:9A: invalid environment variable name'],
    ['file:big.txt', `cannot resolve secret file:big.txt: ${join(dir, 'big.txt')} is larger than 65536 bytes`],
    ['file:.', `cannot resolve secret file:.: EISDIR: illegal operation on a directory, read`],
    ['', 'cannot resolve secret : empty secret'],
  ]
  for (const [spec, want] of cases) {
    t.throws(() => resolveSecret(spec, { env: {}, baseDir: dir }), { code: 'PL_ERR_CONFIG_SECRET', message: want }, spec)
  }
  t.throws(() => resolveSecret('env:A', { env: {}, label: 'token (env:A)' }), { message: 'cannot resolve secret token (env:A): environment variable A is not set' })
  t.end()
})

t.test('isSecretReference', (t) => {
  t.equal(isSecretReference('env:X'), true)
  t.equal(isSecretReference('file:/x'), true)
  t.equal(isSecretReference('envX'), false)
  t.equal(isSecretReference('abc'), false)
  t.end()
})
