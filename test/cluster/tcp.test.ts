import { connect, createServer } from 'node:net'
import t from 'tap'
import { startAgent } from '../e2e/harness/processes.js'
import { pollUntil } from '../e2e/harness/wait.js'
import { freePortOnAll, RELAY_IPS, startCluster, startRedis, waitForLinks } from './harness.js'

// Done-when 9: an agent's TCP tunnel listens on every relay it links to, within 1 s, and keeps
// listening on the survivors when a relay is SIGKILLed.

/** Sends a line to ip:port and resolves with the answer ('' when nothing answers within 2 s). */
function echo(ip: string, port: number, line: string): Promise<string> {
  return new Promise((resolve) => {
    let got = ''
    const s = connect({ host: ip, port }, () => s.write(`${line}\n`))
    s.on('data', (d: Buffer) => {
      got += d.toString()
      if (got.endsWith('\n')) s.end()
    })
    s.on('close', () => resolve(got.trim()))
    s.on('error', () => undefined)
    s.setTimeout(2000, () => s.destroy())
  })
}

t.test('a TCP port listens on all relays within 1 s and survives a relay SIGKILL', async (t) => {
  const port = await freePortOnAll(RELAY_IPS)
  const redis = await startRedis(t)
  const relays = await startCluster(t, { redis, agents: ['one'], tcpPorts: [port] })
  const service = createServer((s) => s.on('data', (d: Buffer) => s.write(`one says ${d.toString()}`)))
  await new Promise<void>((r) => service.listen(0, '127.0.0.1', () => r()))
  t.teardown(() => service.close())
  const agent = await startAgent(t, relays[0]!.proc, {
    name: 'one',
    tunnels: [{ tcp: port, to: `127.0.0.1:${(service.address() as { port: number }).port}` }],
    extra: { relay: relays[0]!.agentsUrl },
    env: { PORCHLIGHT_BACKOFF_MAX_MS: '500' },
  })
  const forwarding = Date.now()
  const all = await pollUntil(() => Promise.all(relays.map((r) => echo(r.ip, port, 'hi'))), (a) => a.every((x) => x === 'one says hi'), { timeoutMs: 10_000, intervalMs: 20 })
  t.ok(all.ok, `every relay answers on port ${port} (${all.value.join(' | ')})`)
  // From the agent's first Forwarding line (its first relay listening) to all three listening.
  t.ok(Date.now() - forwarding <= 1_000, `all three listened within 1 s (${Date.now() - forwarding} ms)`)
  t.ok((await waitForLinks(relays, ['one'], 5_000)).ok, 'linked to every relay')

  relays[1]!.signal('SIGKILL')
  await relays[1]!.proc.exited
  const survivors = [relays[0]!, relays[2]!]
  const after = await Promise.all(survivors.flatMap((r) => [1, 2, 3].map((i) => echo(r.ip, port, `after ${i}`))))
  t.same(after, ['one says after 1', 'one says after 2', 'one says after 3', 'one says after 1', 'one says after 2', 'one says after 3'], 'the survivors still serve the port')
  t.equal(await echo(relays[1]!.ip, port, 'x'), '', 'nothing on the killed relay')
  void agent
})
