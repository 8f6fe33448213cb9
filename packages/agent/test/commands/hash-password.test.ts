import t from 'tap'
import { verifyPassword } from '@porchlight/shared/pki'
import { runHashPassword, type HashPasswordIo } from '../../src/commands/hash-password.js'

function io(stdin: string, answers: string[] = []): HashPasswordIo & { printed: string[]; prompts: string[] } {
  const printed: string[] = []
  const prompts: string[] = []
  return {
    printed,
    prompts,
    readStdin: async () => stdin,
    print: (line) => printed.push(line),
    prompt: async (q) => {
      prompts.push(q)
      return answers.shift() ?? ''
    },
  }
}

t.test('--password-stdin: one trailing newline is dropped, the hash verifies, the password is not printed', async (t) => {
  const fake = io('hunter2 two\n')
  const hash = await runHashPassword({ passwordStdin: true }, fake)
  t.same(fake.printed, [hash])
  t.match(hash, /^scrypt:32768:8:1:/)
  t.equal(await verifyPassword('hunter2 two', hash), true)
  t.notMatch(fake.printed.join('\n'), /hunter2/)
  t.equal(await verifyPassword('x\n', await runHashPassword({ passwordStdin: true }, io('x\n\n'))), true, 'only one newline stripped')
})

t.test('interactive: asks twice and refuses a mismatch or an empty password', async (t) => {
  const ok = io('', ['pw', 'pw'])
  const hash = await runHashPassword({ passwordStdin: false }, ok)
  t.same(ok.prompts, ['Password: ', 'Repeat password: '])
  t.equal(await verifyPassword('pw', hash), true)
  await t.rejects(runHashPassword({ passwordStdin: false }, io('', ['a', 'b'])), { code: 'PL_ERR_USAGE', message: /do not match/ })
  await t.rejects(runHashPassword({ passwordStdin: false }, io('', ['', ''])), { code: 'PL_ERR_USAGE', message: /empty/ })
  await t.rejects(runHashPassword({ passwordStdin: true }, io('\n')), { code: 'PL_ERR_USAGE', message: /empty/ })
})
