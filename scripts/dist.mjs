#!/usr/bin/env node
// npm tarballs of the three publishable packages (docs/packaging.md):
//
//   node scripts/dist.mjs [--out DIR]      (default: dist/)
//
// Writes DIR/porchlight-shared-V.tgz, porchlight-agent-V.tgz and porchlight-server-V.tgz (each
// built by its `prepack` script) and prints their names. The agent and the relay depend on
// @porchlight/shared at exactly their own version, which is not on the npm registry: install its
// tarball in the same command, e.g.
//   npm install -g ./dist/porchlight-agent-V.tgz ./dist/porchlight-shared-V.tgz
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** The workspaces that become tarballs, dependencies first. */
export const DIST_PACKAGES = ['shared', 'agent', 'server']

/** The tarball npm pack names for a workspace: @porchlight/agent@0.1.0 -> porchlight-agent-0.1.0.tgz. */
export function tarballName(pkg) {
  const { name, version } = JSON.parse(readFileSync(path.join(root, 'packages', pkg, 'package.json'), 'utf8'))
  return `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`
}

/** Packs every package into outDir; resolves with the tarballs' paths in DIST_PACKAGES order. */
export function packAll(outDir) {
  mkdirSync(outDir, { recursive: true })
  const files = DIST_PACKAGES.map((pkg) => path.join(outDir, tarballName(pkg)))
  for (const f of files) rmSync(f, { force: true })
  const workspaces = DIST_PACKAGES.flatMap((pkg) => ['-w', `packages/${pkg}`])
  const npm = process.env['npm_execpath'] && process.env['npm_execpath'].endsWith('.js')
    ? [process.execPath, process.env['npm_execpath']]
    : ['npm']
  execFileSync(npm[0], [...npm.slice(1), 'pack', '--silent', '--pack-destination', outDir, ...workspaces], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
  for (const f of files) statSync(f) // each one exists, or this throws with its name
  return files
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2)
  const outIndex = args.indexOf('--out')
  if (args.length !== (outIndex === -1 ? 0 : 2) || (outIndex !== -1 && args[outIndex + 1] === undefined)) {
    process.stderr.write('usage: node scripts/dist.mjs [--out DIR]\n')
    process.exit(2)
  }
  const outDir = outIndex === -1 ? path.join(root, 'dist') : path.resolve(args[outIndex + 1])
  for (const f of packAll(outDir)) {
    process.stdout.write(`${path.relative(process.cwd(), f)} (${(statSync(f).size / 1e3).toFixed(0)} kB)\n`)
  }
}
