// Before anything starts: the Debian packages the bench runs. wrk missing stops the bench (exit 2)
// with one line naming the package; OpenSSH missing (or not root, which sshd's privilege
// separation needs) only skips the two ssh columns, saying why.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

export const EXIT_MISSING_PACKAGE = 2

/** The first executable `name` on env.PATH (then in `extraDirs`), or null. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv, extraDirs: string[] = []): string | null {
  for (const dir of [...(env['PATH'] ?? '').split(delimiter).filter(Boolean), ...extraDirs]) {
    const file = join(dir, name)
    try { accessSync(file, constants.X_OK); return file } catch { /* next */ }
  }
  return null
}

export interface Preflight {
  /** A line to print before exiting with EXIT_MISSING_PACKAGE, or null. */
  fatal: string | null
  /** Why the ssh columns cannot run, or null. */
  sshSkip: string | null
  sshd: string | null
}

export function preflight(env: NodeJS.ProcessEnv, isRoot: boolean): Preflight {
  if (!findOnPath('wrk', env)) {
    return { fatal: 'bench: wrk not found on PATH: install the Debian package wrk (apt-get install -y wrk)', sshSkip: null, sshd: null }
  }
  // Debian installs sshd in /usr/sbin, which a non-login PATH may lack.
  const sshd = findOnPath('sshd', env, ['/usr/sbin'])
  let sshSkip: string | null = null
  if (!sshd) sshSkip = 'sshd not found: install the Debian package openssh-server (apt-get install -y openssh-server)'
  else if (!findOnPath('ssh', env) || !findOnPath('ssh-keygen', env)) sshSkip = 'ssh or ssh-keygen not found: install the Debian package openssh-client (apt-get install -y openssh-client)'
  else if (!isRoot) sshSkip = 'sshd needs root here (privilege separation): run the bench as root'
  return { fatal: null, sshSkip, sshd }
}
