#!/usr/bin/env node
// Single-file executables for the agent and the relay (Node single executable applications).
//
//   node scripts/sea.mjs [--out DIR] [agent] [relay]      (default: both, into dist/sea/)
//
// Each is one esbuild bundle of the CLI from source (CommonJS: Node 20 runs only a CommonJS main
// script from the SEA blob, and its require() knows only the built-in modules), injected with
// postject into a copy of the Node binary that runs this script. The result needs no node_modules
// and no Node: `DIR/porchlight` and `DIR/porchlight-relay`, for this machine's OS and CPU.
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { build } from 'esbuild'
import { cliBuildOptions, cliEntry } from './bundle-common.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** What to build: the CLI entry of each package and the executable's name. */
export const SEA_TARGETS = {
  agent: { name: 'porchlight' },
  relay: { name: 'porchlight-relay' },
}

/** The fuse Node's binary carries for postject (documented in Node's single-executable-applications.md). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
/** Bundles one CLI to a CommonJS file; resolves with its path. */
export async function bundle(target, workDir) {
  const { name } = SEA_TARGETS[target]
  const outfile = path.join(workDir, `${name}.cjs`)
  const result = await build({ ...cliBuildOptions(), entryPoints: [cliEntry(target)], outfile, format: 'cjs' })
  const meta = result.warnings.filter((w) => /import\.meta/.test(w.text))
  if (meta.length > 0) throw new Error(`import.meta in the bundle: ${meta.map((w) => `${w.location?.file}:${w.location?.line}`).join(', ')}`)
  return outfile
}

/** Builds the executable DIR/NAME for one target; resolves with its path. */
export async function buildSea(target, outDir) {
  const { name } = SEA_TARGETS[target]
  const workDir = path.join(outDir, '.build')
  mkdirSync(workDir, { recursive: true })
  const main = await bundle(target, workDir)
  const blob = path.join(workDir, `${name}.blob`)
  const config = path.join(workDir, `${name}.sea.json`)
  // useCodeCache: V8's compiled code goes into the blob, so start-up skips most parsing.
  writeFileSync(config, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }, null, 2))
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'pipe' })
  const exe = path.join(outDir, name)
  rmSync(exe, { force: true })
  copyFileSync(process.execPath, exe)
  chmodSync(exe, 0o755)
  // postject's CLI in a child: its ELF writer prints harmless warnings, shown only if it fails.
  const postject = path.join(path.dirname(createRequire(import.meta.url).resolve('postject/package.json')), 'dist/cli.js')
  try {
    execFileSync(process.execPath, [postject, exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { stdio: 'pipe' })
  } catch (err) {
    throw new Error(`postject failed for ${exe}:\n${String(err.stdout ?? '')}${String(err.stderr ?? '')}`)
  }
  return exe
}

async function cli(argv) {
  let outDir = path.join(root, 'dist/sea')
  const targets = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--out') outDir = path.resolve(argv[++i] ?? '')
    else if (a in SEA_TARGETS) targets.push(a)
    else throw new Error(`usage: node scripts/sea.mjs [--out DIR] [${Object.keys(SEA_TARGETS).join('] [')}]`)
  }
  for (const target of targets.length > 0 ? targets : Object.keys(SEA_TARGETS)) {
    const started = Date.now()
    const exe = await buildSea(target, outDir)
    const mb = (statSync(exe).size / 1e6).toFixed(1)
    process.stdout.write(`${path.relative(process.cwd(), exe)}: ${mb} MB, node ${process.version} ${process.platform}-${process.arch}, built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  cli(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
