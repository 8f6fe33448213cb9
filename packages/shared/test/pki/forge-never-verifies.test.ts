import { readdir, readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

// SECURITY A7: node-forge builds certificates and CRLs; OpenSSL is the only verifier.
const repo = join(dirname(fileURLToPath(import.meta.url)), '../../../..')

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...(await sourceFiles(path)))
    else if (/\.(ts|mts|js|mjs)$/.test(entry.name)) out.push(path)
  }
  return out
}

t.test('no forge verification API anywhere in packages/*/src', async (t) => {
  const files: string[] = []
  for (const pkg of ['shared', 'server', 'agent']) files.push(...(await sourceFiles(join(repo, 'packages', pkg, 'src'))))
  t.ok(files.length > 10, `scanned ${files.length} files`)
  const offenders: string[] = []
  for (const file of files) {
    const text = await readFile(file, 'utf8')
    if (/verifyCertificateChain|createCaStore/.test(text)) offenders.push(`${file}: forge chain verification`)
    if (/from 'node-forge'/.test(text) && /\.verify\(/.test(text)) offenders.push(`${file}: .verify( in a file that imports node-forge`)
  }
  t.same(offenders, [])
})

t.test('node-forge is at least 1.4.0 (CVE fixes)', (t) => {
  const require = createRequire(join(repo, 'packages', 'shared', 'package.json'))
  const version = (require('node-forge/package.json') as { version: string }).version
  const [major = 0, minor = 0] = version.split('.').map(Number)
  t.ok(major > 1 || (major === 1 && minor >= 4), `node-forge ${version}`)
  t.end()
})
