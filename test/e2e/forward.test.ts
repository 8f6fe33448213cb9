// Outbound forwards with the built relay and agent: a real SMTP exchange with STARTTLS (smtp-server
// as the destination, nodemailer as the laptop's mail client), raw bytes with half-close, and the
// relay's outbound policy: a destination outside the list, a name that resolves to loopback, and
// a rule removed by a relay reload while the agent stays connected.
import { createHash } from 'node:crypto'
import { promises as dns } from 'node:dns'
import t from 'tap'
import { freePort } from './harness/ports.js'
import { patternSha256 } from './harness/pattern.js'
import { startAgent, startRelay } from './harness/processes.js'
import { buildRawMessage, sendRawMail, startSmtpServer } from './harness/smtp.js'
import {
  connectTcp, listenOnlySession, MAX_PACKET_PAYLOAD, probePort, sshLikeSession, SSH_LIKE_SERVER_BANNER,
  startConnectionCounter, startSshLikeEcho,
} from './harness/tcp.js'
import { pollUntil } from './harness/wait.js'

const MB = 1024 * 1024

/**
 * A name that resolves to 127.0.0.1 (and only to loopback) on this machine: `smtp.localhost`
 * where the resolver maps *.localhost, else plain `localhost` from /etc/hosts.
 */
async function loopbackName(): Promise<string> {
  for (const name of ['smtp.localhost', 'localhost']) {
    try {
      const answers = (await dns.lookup(name, { all: true, verbatim: true })).map(a => a.address)
      if (answers.includes('127.0.0.1') && answers.every(a => a === '::1' || a.startsWith('127.'))) return name
    } catch {
      // not resolvable here; try the next one
    }
  }
  throw new Error('neither smtp.localhost nor localhost resolves to 127.0.0.1 on this machine')
}

const smtp = await startSmtpServer(t)
const echo = await startSshLikeEcho(t)
const untouched = await startConnectionCounter(t) // must never see a connection
const nameTo = `${await loopbackName()}:${untouched.port}`
const smtpTo = `127.0.0.1:${smtp.port}`
const echoTo = `127.0.0.1:${echo.port}`
const deniedTo = `127.0.0.1:${untouched.port}`
const relay = await startRelay(t, {
  agents: {
    // IP-literal rules allow these loopback destinations explicitly; the name rule does not.
    laptop: { outbound: [smtpTo, echoTo, nameTo] },
    quick: { outbound: [smtpTo] },
  },
})
// Picked after the relay bound its ephemeral ports, so none of them can be handed to the relay too.
const [smtpLocal, echoLocal, deniedLocal, nameLocal] = [await freePort(), await freePort(), await freePort(), await freePort()]
const laptop = await startAgent(t, relay, {
  name: 'laptop',
  tunnels: [
    { forward: `127.0.0.1:${smtpLocal}`, to: smtpTo },
    { forward: String(echoLocal), to: echoTo },
    { forward: `127.0.0.1:${deniedLocal}`, to: deniedTo },
    { forward: `127.0.0.1:${nameLocal}`, to: nameTo },
  ],
  // Forward listeners print their line before the link is up; wait for the link too.
  waitFor: /"msg":"connected"/,
})

const FROM = 'alice@laptop.porchlight.test'
const TO = 'bob@example.org'

t.test('one Forwarding line per forward: local listener -> destination', async t => {
  t.same(laptop.forwarding.map(f => `${f.publicUrl} -> ${f.localUrl}`).sort(), [
    `tcp://127.0.0.1:${smtpLocal} -> ${smtpTo}`,
    `tcp://127.0.0.1:${echoLocal} -> ${echoTo}`,
    `tcp://127.0.0.1:${deniedLocal} -> ${deniedTo}`,
    `tcp://127.0.0.1:${nameLocal} -> ${nameTo}`,
  ].sort())
})

t.test('SMTP with STARTTLS through a forward: the message arrives byte-identical', async t => {
  const raw = buildRawMessage({ from: FROM, to: TO, subject: 'through the porch', bodyBytes: 2 * MB })
  const sent = await sendRawMail(smtpLocal, { caPem: smtp.caPem, from: FROM, to: TO, raw })
  t.comment(`${raw.length} bytes over STARTTLS through the forward in ${sent.ms} ms`)
  t.match(sent.response, /^250 .*queued as mail-1/, 'the server accepted the message')
  t.same(sent.accepted, [TO])
  t.same(sent.rejected, [])
  t.equal(smtp.mails.length, 1)
  const mail = smtp.mails[0]
  t.equal(mail?.raw.length, raw.length, 'same length')
  t.equal(mail?.sha256, createHash('sha256').update(raw).digest('hex'), 'same sha256')
  t.ok(mail?.raw.equals(raw), 'byte-identical, dot-stuffed lines included')
  t.equal(mail?.secure, true, 'the message travelled inside TLS (STARTTLS)')
  t.match(mail?.tlsProtocol ?? '', /^TLSv1\.[23]$/)
  t.equal(mail?.from, FROM)
  t.same(mail?.to, [TO])
  t.equal(mail?.ehloName, 'laptop.porchlight.test', 'EHLO name of the laptop client')
  t.equal(mail?.remoteAddress, '127.0.0.1', 'the relay dialled the destination')
  // The relay logs one line per forward with what it dialled and the bytes it carried.
  const log = await relay.waitForLog(l => l['msg'] === 'forward' && l['destination'] === smtpTo, 5000, 'forward line')
  t.equal(log['agent'], 'laptop')
  t.equal(log['address'], '127.0.0.1')
  t.ok(typeof log['bytesOut'] === 'number' && log['bytesOut'] > raw.length, `bytesOut ${String(log['bytesOut'])} > message (TLS adds overhead)`)
  t.ok(typeof log['bytesIn'] === 'number' && log['bytesIn'] > 1000, `bytesIn ${String(log['bytesIn'])}: greeting, EHLO answers, certificate`)
  t.notMatch(relay.output(), /through the porch/, 'the relay never saw the plaintext subject')
})

t.test('quick mode `porchlight forward LOCALPORT HOST:PORT` carries a mail too', async t => {
  const local = await freePort()
  const agent = await startAgent(t, relay, { name: 'quick', args: ['forward', String(local), smtpTo], waitFor: /"msg":"connected"/ })
  t.same(agent.forwarding, [{ publicUrl: `tcp://127.0.0.1:${local}`, localUrl: smtpTo }])
  const before = smtp.mails.length
  const raw = buildRawMessage({ from: FROM, to: TO, subject: 'quick mode', bodyBytes: 64 * 1024 })
  const sent = await sendRawMail(local, { caPem: smtp.caPem, from: FROM, to: TO, raw })
  t.match(sent.response, /^250 /)
  t.equal(smtp.mails.length, before + 1)
  t.ok(smtp.mails[before]?.raw.equals(raw), 'byte-identical')
  t.equal(smtp.mails[before]?.secure, true)
  t.equal(await agent.kill('SIGTERM'), 0)
  t.equal(await probePort(local), 'refused', 'the local listener is gone with the agent')
})

t.test('raw bytes through a forward: 20 MB hashed both ways, half-close both ways', async t => {
  const size = 20 * MB
  const before = echo.connections.length
  const result = await sshLikeSession(await connectTcp(echoLocal), size, 30_000)
  t.comment(`20 MB up and echoed down through the forward in ${result.ms} ms`)
  t.equal(result.serverBanner, SSH_LIKE_SERVER_BANNER, 'the destination spoke first')
  t.equal(result.echoedBytes, size)
  t.equal(result.echoedSha256, patternSha256(size))
  t.same(result.summary, { packets: size / MAX_PACKET_PAYLOAD, bytes: size, sha256: patternSha256(size) }, 'the EOF packet came after our FIN')
  t.equal(echo.connections[before]?.remoteAddress, '127.0.0.1')

  const listenOnly = await listenOnlySession(await connectTcp(echoLocal), MB, 10_000)
  t.equal(listenOnly.serverFinBeforeUpload, true, "the destination's FIN reached the laptop first")
  const seen = echo.connections[before + 1]
  await seen?.closed
  t.same(seen?.received, { packets: MB / MAX_PACKET_PAYLOAD, bytes: MB, sha256: patternSha256(MB) }, '1 MB sent after that FIN arrived')
})

t.test('a destination outside the allowlist is refused; the relay never dials it', async t => {
  t.equal(await probePort(deniedLocal, 2000), 'closed-by-peer', 'the local client is closed without a byte')
  const agentLog = await laptop.handle.waitForLine('stderr', l => l.includes('"forward refused by the relay"') && l.includes(`"tunnel":"forward:${deniedLocal}"`), 5000, 'agent refusal line')
  t.match(agentLog, /"code":"PL_ERR_POLICY_DEST_DENIED"/)
  t.match(agentLog, /"level":40/, 'a warning on the agent')
  const relayLog = await relay.waitForLog(l => l['msg'] === 'forward refused' && l['destination'] === deniedTo, 5000, 'relay refusal line')
  t.equal(relayLog['code'], 'PL_ERR_POLICY_DEST_DENIED')
  t.equal(relayLog['agent'], 'laptop')
  t.equal(untouched.count(), 0, 'no connection reached the destination')
})

t.test('a name that resolves to 127.0.0.1 is refused when only the name is allowed', async t => {
  t.equal(await probePort(nameLocal, 2000), 'closed-by-peer', 'the local client is closed without a byte')
  const relayLog = await relay.waitForLog(l => l['msg'] === 'forward refused' && l['destination'] === nameTo, 5000, 'relay refusal line')
  t.equal(relayLog['code'], 'PL_ERR_POLICY_DEST_DENIED')
  // Refused as loopback or as one of the relay's own addresses (it listens on 127.0.0.1): either way by address.
  t.match(String(relayLog['reason']), /resolved to 127\.0\.0\.1/, `reason: ${String(relayLog['reason'])}`)
  const agentLog = await laptop.handle.waitForLine('stderr', l => l.includes('"forward refused by the relay"') && l.includes(`"tunnel":"forward:${nameLocal}"`), 5000, 'agent refusal line')
  t.match(agentLog, /"code":"PL_ERR_POLICY_DEST_DENIED"/)
  t.notMatch(agentLog, /loopback/, 'the agent is not told why (the reason stays on the relay)')
  t.equal(untouched.count(), 0, 'no connection reached the loopback service')
})

t.test('the policy is read on every open: a relay reload that drops the rule refuses the next connection', async t => {
  // Pin the bound ports so the reloaded config names the same listeners.
  relay.config.listen.public = `127.0.0.1:${relay.publicPort}`
  relay.config.listen.agents = `127.0.0.1:${relay.agentsPort}`
  if (relay.adminPort !== null) relay.config.listen.admin = `127.0.0.1:${relay.adminPort}`
  const laptopPolicy = relay.config.agents['laptop']
  if (laptopPolicy === undefined) throw new Error('relay config lost agent laptop')
  const live = await connectTcp(echoLocal)
  const banner = await new Promise<string>(resolve => live.once('data', (c: Buffer) => resolve(c.toString('latin1'))))
  t.equal(banner, `${SSH_LIKE_SERVER_BANNER}\r\n`, 'a forward open before the reload')

  laptopPolicy.outbound = [smtpTo, nameTo]
  relay.writeConfig()
  process.kill(relay.pid, 'SIGHUP')
  await relay.waitForLog(l => l['msg'] === 'config reloaded', 5000, 'config reloaded')
  const before = echo.connections.length
  t.equal(await probePort(echoLocal, 2000), 'closed-by-peer', 'a new connection to the dropped destination is refused')
  t.equal(echo.connections.length, before, 'the destination saw no new connection')
  const refusals = await pollUntil(async () => relay.logs().filter(l => l['msg'] === 'forward refused' && l['destination'] === echoTo).length, n => n >= 1, { timeoutMs: 3000 })
  t.equal(refusals.value, 1, 'one refusal logged for it')
  t.ok(laptop.handle.running, 'the agent stayed connected')
  live.destroy()
})
