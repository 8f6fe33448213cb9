#!/usr/bin/env node
// The `porchlight-relay` command. This file is committed, not built, so npm links it into node_modules/.bin
// at install time even in a fresh clone where dist/ does not exist yet. It only loads the compiled
// CLI (scripts/bundle.mjs), which parses process.argv and runs on import.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const cli = new URL('../dist/bundle/bin.js', import.meta.url)
if (!existsSync(cli)) {
  process.stderr.write(`porchlight-relay: ${fileURLToPath(cli)} is not built yet: run \`npm run build\` in the checkout\n`)
  process.exit(1)
}
await import(cli.href)
