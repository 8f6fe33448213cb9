import { spawn } from 'node:child_process'
import http from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseRelayConfig } from '@porchlight/shared/config'
import { createLogger } from '@porchlight/shared/log'
import { newToken, sha256Hex } from '@porchlight/shared/secrets'
import { buildRelay } from './relay.js'

/**
 * `npm start`: a relay (domain localhost) on loopback, a sample site, and the real agent binary
 * publishing it as demo.localhost. Nothing to configure; Ctrl-C stops everything.
 */
const here = path.dirname(fileURLToPath(import.meta.url))
// What the `porchlight` command runs (packages/agent/bin/porchlight.js loads the same bundle).
const agentBin = path.resolve(here, '../../agent/dist/bundle/bin.js')
const dir = mkdtempSync(path.join(os.tmpdir(), 'porchlight-demo-'))
const token = newToken()
const log = createLogger({ name: 'porchlight-demo', level: process.env['PORCHLIGHT_LOG_LEVEL'] ?? 'warn' })

const site = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
  res.end(`<!doctype html><title>Porchlight demo</title><h1>Hello from the laptop</h1>
<p>This page is served by a local web server and reached through the Porchlight relay.</p>
<p>Your request: <code>${req.method} ${escape(req.url ?? '/')}</code>, forwarded for <code>${escape(String(req.headers['x-forwarded-for'] ?? ''))}</code>.</p>`)
})
await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve))
const sitePort = (site.address() as AddressInfo).port

const publicPort = Number(process.env['PORCHLIGHT_DEMO_PORT'] ?? 8080)
const relayConfig = (port: number) => parseRelayConfig({
  domain: 'localhost',
  listen: { public: `127.0.0.1:${port}`, agents: '127.0.0.1:0', admin: false },
  agents: { demo: { token_sha256: sha256Hex(token), hosts: ['*.localhost'] } },
}, 'demo', dir).config

let relay = buildRelay(relayConfig(publicPort), { log })
let addresses
try {
  addresses = await relay.listen()
} catch {
  // Port taken: any free port will do for a demo.
  relay = buildRelay(relayConfig(0), { log })
  addresses = await relay.listen()
}

const agentFile = path.join(dir, 'agent.yaml')
writeFileSync(agentFile, `relay: ws://${addresses.agents}\ntoken: env:PORCHLIGHT_TOKEN\ninspect: false\ntunnels:\n  - http: demo\n    to: http://127.0.0.1:${sitePort}\n`, { mode: 0o600 })
const agent = spawn(process.execPath, [agentBin, 'up', '-c', agentFile], {
  env: { ...process.env, PORCHLIGHT_TOKEN: token, PORCHLIGHT_LOG_LEVEL: 'warn' },
  stdio: ['ignore', 'pipe', 'inherit'],
})
agent.stdout.setEncoding('utf8')
agent.stdout.on('data', (text: string) => {
  for (const line of text.split('\n')) {
    if (line.startsWith('Forwarding')) {
      const url = /Forwarding (\S+)/.exec(line)?.[1]
      process.stdout.write(`\nPorchlight demo is running:\n\n  ${url}\n\n(open it in a browser or: curl ${url})\nPress Ctrl-C to stop.\n`)
    }
  }
})

let stopping = false
const stop = (): void => {
  if (stopping) process.exit(1)
  stopping = true
  agent.kill('SIGTERM')
  site.close()
  void relay.close(1000).finally(() => {
    rmSync(dir, { recursive: true, force: true })
    process.exit(0)
  })
}
agent.on('exit', (code) => { if (!stopping) { process.stderr.write(`agent exited (${code})\n`); stop() } })
process.on('SIGINT', stop)
process.on('SIGTERM', stop)

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}
