#!/usr/bin/env node
// Project lint rules that a grep can enforce (run by `npm test`):
// - no console.* in packages/*/src (logs go through pino; CLI output through explicit writers)
// - no disabled TLS verification anywhere in shipped code (SECURITY A17)
// - node-forge never verifies anything (SECURITY A7): OpenSSL via Node's tls does
// - only relay-link.ts and agents/upgrade.ts import `ws` in product code (STYLE: transport under the proxy)
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const problems = []

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name)
    if (name === 'node_modules' || name === 'dist') continue
    if (statSync(p).isDirectory()) walk(p, out)
    else if (p.endsWith('.ts')) out.push(p)
  }
  return out
}

const srcFiles = ['shared', 'server', 'agent'].flatMap((pkg) => walk(path.join(root, 'packages', pkg, 'src')))
const WS_ALLOWED = new Set(['packages/agent/src/relay-link.ts', 'packages/server/src/agents/upgrade.ts', 'packages/shared/src/mux/ws-duplex.ts'])

for (const file of srcFiles) {
  const rel = path.relative(root, file)
  const text = readFileSync(file, 'utf8')
  text.split('\n').forEach((line, i) => {
    const where = `${rel}:${i + 1}`
    if (/\bconsole\.(log|error|warn|info|debug)\(/.test(line)) problems.push(`${where}: console.* in product code (use the pino logger or an explicit writer)`)
    if (/rejectUnauthorized\s*:\s*false/.test(line) && !/lint-allow: (relay-decides|pinned-fingerprint)/.test(line)) problems.push(`${where}: rejectUnauthorized: false (TLS verification must stay on)`)
    if (/NODE_TLS_REJECT_UNAUTHORIZED/.test(line)) problems.push(`${where}: NODE_TLS_REJECT_UNAUTHORIZED`)
    if (/verifyCertificateChain|\.verify\(/.test(line) && /forge/.test(text)) problems.push(`${where}: node-forge must not verify certificates (use Node's tls)`)
    if (/from 'ws'/.test(line) && !/import type/.test(line) && !WS_ALLOWED.has(rel)) problems.push(`${where}: only the link files import ws`)
  })
}

if (problems.length > 0) {
  for (const p of problems) process.stderr.write(`${p}\n`)
  process.stderr.write(`lint: ${problems.length} problem(s)\n`)
  process.exit(1)
}
process.stdout.write(`lint: ${srcFiles.length} files ok\n`)
