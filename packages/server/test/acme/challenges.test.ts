import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { ChallengeAnswers, HTTP01_PREFIX } from '../../src/acme/challenges.js'

t.test('HTTP-01 answers only an open token, for its own name', async (t) => {
  const answers = new ChallengeAnswers()
  answers.addHttp('a.test', 'tok123', 'tok123.thumb')
  const server = http.createServer((req, res) => {
    if (!answers.answerHttp(req, res)) res.writeHead(404).end('routed')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  const port = (server.address() as AddressInfo).port
  const get = async (host: string, path: string): Promise<[number, string]> => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => http.get({ port, host: '127.0.0.1', path, headers: { host } }, resolve).on('error', reject))
    let body = ''
    for await (const c of res) body += String(c)
    return [res.statusCode ?? 0, body]
  }
  t.same(await get('a.test:80', `${HTTP01_PREFIX}tok123`), [200, 'tok123.thumb'])
  t.same(await get('b.test', `${HTTP01_PREFIX}tok123`), [404, 'routed'], 'another name')
  t.same(await get('a.test', `${HTTP01_PREFIX}other`), [404, 'routed'], 'unknown token')
  answers.removeHttp('tok123')
  t.same(await get('a.test', `${HTTP01_PREFIX}tok123`), [404, 'routed'], 'closed')
})
