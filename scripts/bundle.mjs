#!/usr/bin/env node
// The bundles the commands run: packages/agent/dist/bundle/ and packages/server/dist/bundle/.
//
//   node scripts/bundle.mjs            (part of `npm run build`, after tsc -b)
//
// Each is an esbuild bundle of the CLI from source, split at every `import()` so a command still
// loads only what it uses (the relay's admin API, the agent's login and inspector stay out of an
// idle process). Why a bundle and not tsc's one file per module: minified and tree-shaken, a
// process keeps less source text and fewer module records in memory, and an idle agent is ~4 MiB
// smaller (docs/performance.md, Memory). The shims in packages/*/bin/ load bundle/bin.js;
// `manifest.json` beside it names the npm packages in each chunk, for the tests that check what an
// idle process loaded.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { cliBuildOptions, cliEntry } from './bundle-common.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** The directory each CLI's bundle is written to. */
export const BUNDLE_TARGETS = {
  agent: { outDir: 'packages/agent/dist/bundle' },
  relay: { outDir: 'packages/server/dist/bundle' },
}

// CommonJS dependencies call require(); an ESM chunk has none of its own.
const REQUIRE_BANNER = "import { createRequire as __porchlightCreateRequire } from 'node:module'; const require = __porchlightCreateRequire(import.meta.url);"

/** The npm package a bundled input file came from, or null for the product's own code. */
function packageOf(input) {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input.split(path.sep).join('/'))
  return m === null ? null : m[1]
}

/**
 * Writes the files of a build into `dir` so that a process running from it never sees a missing or
 * half-written file (the install tests rebuild while others run): a file is replaced by a rename only
 * when its content changed, and files the build no longer has are removed last.
 */
function writeInPlace(dir, files) {
  mkdirSync(dir, { recursive: true })
  for (const [name, contents] of files) {
    const file = path.join(dir, name)
    if (existsSync(file) && readFileSync(file).equals(contents)) continue
    writeFileSync(`${file}.tmp`, contents)
    renameSync(`${file}.tmp`, file)
  }
  for (const name of readdirSync(dir)) if (!files.has(name)) rmSync(path.join(dir, name), { force: true })
}

/** Builds one target; resolves with its output directory. */
export async function bundleTarget(target) {
  const out = path.join(root, BUNDLE_TARGETS[target].outDir)
  const result = await build({
    ...cliBuildOptions(),
    entryPoints: { bin: cliEntry(target) },
    outdir: out,
    splitting: true,
    format: 'esm',
    // For --debug, which turns source maps on: stack traces name the TypeScript files and lines.
    sourcemap: 'linked',
    sourcesContent: false,
    banner: { js: REQUIRE_BANNER },
    metafile: true,
    write: false,
  })
  const files = new Map(result.outputFiles.map((f) => [path.basename(f.path), Buffer.from(f.contents)]))
  const manifest = {}
  for (const [file, output] of Object.entries(result.metafile.outputs)) {
    const packages = new Set()
    for (const input of Object.keys(output.inputs)) {
      const name = packageOf(input)
      if (name !== null) packages.add(name)
    }
    manifest[path.basename(file)] = [...packages].sort()
  }
  files.set('manifest.json', Buffer.from(`${JSON.stringify(manifest, null, 1)}\n`))
  // The chunks are ES modules whatever the nearest package.json says.
  files.set('package.json', Buffer.from('{ "type": "module" }\n'))
  writeInPlace(out, files)
  return out
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const targets = process.argv.slice(2)
  for (const t of targets) if (!(t in BUNDLE_TARGETS)) throw new Error(`usage: node scripts/bundle.mjs [${Object.keys(BUNDLE_TARGETS).join('] [')}]`)
  Promise.all((targets.length > 0 ? targets : Object.keys(BUNDLE_TARGETS)).map(bundleTarget)).catch((err) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
