#!/usr/bin/env node
// The Debian package (docs/packaging.md):
//
//   node scripts/deb.mjs [--sea DIR] [--out DIR]      (defaults: dist/sea/, dist/)
//
// Writes OUT/porchlight_V_ARCH.deb with the single executables as /usr/bin/porchlight and
// /usr/bin/porchlight-relay (built into the --sea dir by scripts/sea.mjs when missing there), the
// systemd units of deploy/systemd/ pointed at them, the examples and docs, and the maintainer
// scripts of deploy/debian/ (a `porchlight` system user, /etc/porchlight, /var/lib/porchlight).
// Needs dpkg-deb; runs as any user (--root-owner-group makes every file root's in the archive).
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildSea, SEA_TARGETS } from './sea.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** Debian's name for Node's process.arch. */
const DEB_ARCH = { x64: 'amd64', arm64: 'arm64' }

/** The product's version: the agent's and the relay's package.json agree on it. */
export function productVersion() {
  const read = (pkg) => JSON.parse(readFileSync(path.join(root, 'packages', pkg, 'package.json'), 'utf8')).version
  const [agent, relay] = [read('agent'), read('server')]
  if (agent !== relay) throw new Error(`packages/agent (${agent}) and packages/server (${relay}) have different versions`)
  return agent
}

export function debArch() {
  const arch = DEB_ARCH[process.arch]
  if (arch === undefined) throw new Error(`no Debian architecture for ${process.arch}`)
  return arch
}

/**
 * deploy/systemd's unit for the package: the single executable instead of node and the checkout
 * (every other line as it is), documentation under /usr/share/doc. Fails if the unit's shape changed.
 */
export function unitForPackage(text, command) {
  const exec = /^ExecStart=\/usr\/bin\/node \/opt\/porchlight\/packages\/[a-z]+\/dist\/bin\.js /m
  const docs = /^Documentation=file:\/\/\/opt\/porchlight\/docs\//m
  if (!exec.test(text) || !docs.test(text)) throw new Error('deploy/systemd unit: ExecStart or Documentation no longer has the shape scripts/deb.mjs rewrites')
  return text.replace(exec, `ExecStart=/usr/bin/${command} `).replace(docs, 'Documentation=file:///usr/share/doc/porchlight/')
}

function copyTree(from, to, keep = () => true) {
  mkdirSync(to, { recursive: true })
  for (const name of readdirSync(from)) {
    const src = path.join(from, name)
    if (statSync(src).isDirectory()) copyTree(src, path.join(to, name), keep)
    else if (keep(name)) copyFileSync(src, path.join(to, name))
  }
}

/** Builds the .deb into outDir from the executables in seaDir; resolves with its path. */
export async function buildDeb({ seaDir, outDir }) {
  const version = productVersion()
  const arch = debArch()
  const exes = {}
  for (const target of Object.keys(SEA_TARGETS)) {
    const exe = path.join(seaDir, SEA_TARGETS[target].name)
    exes[target] = existsSync(exe) ? exe : await buildSea(target, seaDir)
  }
  const stage = path.join(outDir, `.deb-root-${process.pid}`)
  rmSync(stage, { recursive: true, force: true })
  try {
    const put = (rel, from, mode = 0o644) => {
      const dest = path.join(stage, rel)
      mkdirSync(path.dirname(dest), { recursive: true })
      copyFileSync(from, dest)
      chmodSync(dest, mode)
    }
    const write = (rel, text, mode = 0o644) => {
      const dest = path.join(stage, rel)
      mkdirSync(path.dirname(dest), { recursive: true })
      writeFileSync(dest, text)
      chmodSync(dest, mode)
    }
    put('usr/bin/porchlight', exes.agent, 0o755)
    put('usr/bin/porchlight-relay', exes.relay, 0o755)
    // /lib, not /usr/lib: bookworm's packages still ship units there (merged-/usr moves are dpkg's job).
    write('lib/systemd/system/porchlight-relay.service', unitForPackage(readFileSync(path.join(root, 'deploy/systemd/porchlight-relay.service'), 'utf8'), 'porchlight-relay'))
    write('lib/systemd/system/porchlight-agent.service', unitForPackage(readFileSync(path.join(root, 'deploy/systemd/porchlight-agent.service'), 'utf8'), 'porchlight'))
    copyTree(path.join(root, 'docs'), path.join(stage, 'usr/share/doc/porchlight'), (n) => n.endsWith('.md'))
    copyTree(path.join(root, 'deploy/examples'), path.join(stage, 'usr/share/doc/porchlight/examples'))
    put('usr/share/doc/porchlight/README.md', path.join(root, 'README.md'))
    put('usr/share/doc/porchlight/copyright', path.join(root, 'deploy/debian/copyright'))
    for (const script of ['postinst', 'prerm', 'postrm']) put(`DEBIAN/${script}`, path.join(root, 'deploy/debian', script), 0o755)
    const installedKb = Math.ceil(duBytes(stage) / 1024)
    const control = readFileSync(path.join(root, 'deploy/debian/control'), 'utf8')
      .replace('@VERSION@', version).replace('@ARCH@', arch).replace('@INSTALLED_SIZE@', String(installedKb))
    if (/@[A-Z_]+@/.test(control)) throw new Error(`deploy/debian/control: unfilled ${/@[A-Z_]+@/.exec(control)[0]}`)
    write('DEBIAN/control', control)
    const deb = path.join(outDir, `porchlight_${version}_${arch}.deb`)
    rmSync(deb, { force: true })
    // gzip: a little larger than xz, but seconds instead of a minute for two Node binaries.
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z6', '--build', stage, deb], { stdio: ['ignore', 'ignore', 'inherit'] })
    return deb
  } finally {
    rmSync(stage, { recursive: true, force: true })
  }
}

function duBytes(dir) {
  let total = 0
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name)
    const st = statSync(p)
    total += st.isDirectory() ? duBytes(p) : st.size
  }
  return total
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2)
  let seaDir = path.join(root, 'dist/sea')
  let outDir = path.join(root, 'dist')
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--sea' && args[i + 1]) seaDir = path.resolve(args[++i])
    else if (args[i] === '--out' && args[i + 1]) outDir = path.resolve(args[++i])
    else {
      process.stderr.write('usage: node scripts/deb.mjs [--sea DIR] [--out DIR]\n')
      process.exit(2)
    }
  }
  mkdirSync(outDir, { recursive: true })
  buildDeb({ seaDir, outDir }).then(
    (deb) => { process.stdout.write(`${path.relative(process.cwd(), deb)} (${(statSync(deb).size / 1e6).toFixed(1)} MB)\n`) },
    (err) => { process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`); process.exit(1) },
  )
}
