// OpenSSH's remote forward beside Porchlight: the bench's own `sshd -D` on a loopback port with
// throwaway host and user keys, and `ssh -N -R` (or `ssh -tt -R`, which asks for a pty and so makes
// ssh and sshd treat the connection as interactive: TCP_NODELAY, low-delay IPQoS) to the origin.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { freePortRange } from '../e2e/harness/tcp.js'

const READY_MS = 10_000

function waitForPort(port: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = connect(port, '127.0.0.1')
      s.once('connect', () => { s.destroy(); resolve() })
      s.once('error', () => {
        s.destroy()
        if (Date.now() > deadline) reject(new Error(`${what}: port ${port} not listening after ${timeoutMs} ms`))
        else setTimeout(attempt, 50)
      })
    }
    attempt()
  })
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 2000)
    child.once('exit', () => { clearTimeout(kill); resolve() })
    child.kill('SIGTERM')
  })
}

export interface SshServer {
  port: number
  pid: number
  /** One ssh client with a remote forward to each origin port; resolves with the forwarded ports (same order). */
  forward(originPorts: number[], mode: '-N' | '-tt'): Promise<SshForward>
  close(): Promise<void>
}

export interface SshForward { ports: number[]; clientPid: number; close(): Promise<void> }

/** Starts `sshd` (the binary preflight found) on a free loopback port, with keys made for this run. */
export async function startSshd(sshdBin: string): Promise<SshServer> {
  const dir = mkdtempSync(join(tmpdir(), 'porchlight-bench-ssh-'))
  const log: string[] = []
  const children: ChildProcess[] = []
  try {
    // Debian creates the privilege separation directory from its service unit, which the bench never starts.
    if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 })
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_ed25519')])
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'user_ed25519')])
    const user = userInfo().username
    writeFileSync(join(dir, 'sshd_config'), [
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_ed25519')}`,
      `AuthorizedKeysFile ${join(dir, 'user_ed25519.pub')}`,
      'StrictModes no',
      'UsePAM no',
      'PidFile none',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'AllowTcpForwarding yes',
      'PermitTTY yes',
      'LogLevel ERROR',
      '',
    ].join('\n'))
    const { from: port } = await freePortRange(1)
    const sshd = spawn(sshdBin, ['-D', '-e', '-f', join(dir, 'sshd_config'), '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] })
    children.push(sshd)
    sshd.stderr?.setEncoding('utf8').on('data', (d: string) => log.push(d))
    const exited = new Promise<never>((_, reject) => sshd.once('exit', (code) => reject(new Error(`sshd exited (${String(code)}): ${log.join('')}`))))
    exited.catch(() => {})
    await Promise.race([waitForPort(port, READY_MS, 'sshd'), exited])
    const server: SshServer = {
      port,
      pid: sshd.pid!,
      async forward(originPorts, mode) {
        const { from } = await freePortRange(originPorts.length)
        const rports = originPorts.map((_, i) => from + i)
        const args: string[] = [mode]
        originPorts.forEach((originPort, i) => args.push('-R', `127.0.0.1:${rports[i]!}:127.0.0.1:${originPort}`))
        args.push(
          '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ExitOnForwardFailure=yes',
          '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-i', join(dir, 'user_ed25519'), '-p', String(port), `${user}@127.0.0.1`)
        // -tt needs a remote command to hold the session open; stdin stays an open pipe.
        if (mode === '-tt') args.push('exec sleep 86400')
        const ssh = spawn('ssh', args, { stdio: ['pipe', 'ignore', 'pipe'] })
        children.push(ssh)
        const err: string[] = []
        ssh.stderr?.setEncoding('utf8').on('data', (d: string) => err.push(d))
        const sshExit = new Promise<never>((_, reject) => ssh.once('exit', (code) => reject(new Error(`ssh ${mode} -R exited (${String(code)}): ${err.join('')}`))))
        sshExit.catch(() => {})
        for (const rport of rports) await Promise.race([waitForPort(rport, READY_MS, `ssh ${mode} -R`), sshExit])
        return { ports: rports, clientPid: ssh.pid!, close: () => stop(ssh) }
      },
      async close() {
        for (const c of children.reverse()) await stop(c)
        rmSync(dir, { recursive: true, force: true })
      },
    }
    return server
  } catch (err) {
    for (const c of children.reverse()) await stop(c)
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}
