import { X509Certificate } from 'node:crypto'
import { chown, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { formatIssues, loadRelayConfig, type ConfigIssue, type RelayConfig } from '@porchlight/shared/config'
import { isPorchlightError, PorchlightError } from '@porchlight/shared/errors'
import { isLiveRelay, readRunFile, type RunFile } from './run-file.js'

type Print = (line: string) => void

/** How long `agent add|remove|allow` wait for the relay to confirm a reload. */
export const RELOAD_CONFIRM_MS = 5_000

/** A checked edit of relay.yaml, written next to it and not yet in place. */
export interface StagedConfig {
  config: RelayConfig
  /** Renames the checked file over relay.yaml (atomic: a running relay never reads half a file). */
  commit(): Promise<void>
  discard(): Promise<void>
}

/**
 * Stages `text` as the new relay.yaml only if the relay's own loader accepts it: written next to
 * it (same mode and owner) and loaded as `check` would, so a bad edit never lands.
 */
export async function stageRelayConfig(configFile: string, text: string): Promise<StagedConfig> {
  const st = await stat(configFile)
  const tmp = path.join(path.dirname(configFile), `.${path.basename(configFile)}.${process.pid}.tmp`)
  const discard = (): Promise<void> => rm(tmp, { force: true })
  await writeFile(tmp, text, { mode: st.mode & 0o777, flag: 'w' })
  try {
    if (typeof process.getuid === 'function' && process.getuid() === 0) await chown(tmp, st.uid, st.gid)
    const config = (await loadRelayConfig(tmp)).config
    return { config, commit: () => rename(tmp, configFile), discard }
  } catch (err) {
    await discard()
    const issues = isPorchlightError(err) ? (err as { details?: unknown }).details : undefined
    if (Array.isArray(issues)) throw new PorchlightError('PL_ERR_CONFIG_INVALID', [`${configFile} (after this edit)`, formatIssues(issues as ConfigIssue[])], { details: issues })
    throw err
  }
}

/** stageRelayConfig + commit. */
export async function writeRelayConfigChecked(configFile: string, text: string): Promise<RelayConfig> {
  const staged = await stageRelayConfig(configFile, text)
  await staged.commit()
  return staged.config
}

export async function readRelayText(configFile: string): Promise<string> {
  try {
    return await readFile(configFile, 'utf8')
  } catch (err) {
    throw new PorchlightError('PL_ERR_CONFIG_READ', [configFile, (err as NodeJS.ErrnoException).code ?? String(err)], { cause: err })
  }
}

/** The relay serving `configFile`, from its run file in the state directory; null if none runs. */
export async function findRunningRelay(config: RelayConfig, configFile: string): Promise<RunFile | null> {
  if (config.state === null) return null
  const run = await readRunFile(config.state)
  return run !== null && isLiveRelay(run, configFile) ? run : null
}

/**
 * SIGHUP to the relay serving `configFile`, then wait until its run file counts one more reload.
 * Prints what happened; never throws for a relay that is not running (the edit applies at start).
 */
export async function reloadRunningRelay(config: RelayConfig, configFile: string, print: Print, confirmMs = RELOAD_CONFIRM_MS): Promise<'reloaded' | 'not-running' | 'unconfirmed'> {
  if (config.state === null) {
    print(`note: ${configFile} has no state: directory, so no running relay can be found; reload it yourself (systemctl reload porchlight-relay, or kill -HUP its pid)`)
    return 'not-running'
  }
  const run = await findRunningRelay(config, configFile)
  if (run === null) {
    print('no relay is running for this config; the change applies when it starts')
    return 'not-running'
  }
  try {
    process.kill(run.pid, 'SIGHUP')
  } catch (err) {
    print(`warning: cannot signal the relay (pid ${run.pid}): ${(err as NodeJS.ErrnoException).code ?? String(err)}; run this as the relay's user or root, or systemctl reload porchlight-relay`)
    return 'unconfirmed'
  }
  const deadline = Date.now() + confirmMs
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25))
    const now = await readRunFile(config.state)
    if (now !== null && now.pid === run.pid && now.reloads > run.reloads) {
      print(`reloaded the running relay (pid ${run.pid})`)
      return 'reloaded'
    }
  }
  print(`warning: sent SIGHUP to the relay (pid ${run.pid}) but it did not confirm a reload within ${confirmMs / 1000} s; its log says why ("config reload failed")`)
  return 'unconfirmed'
}

/**
 * SHA-256 of the relay CA's certificate when it signed the agents listener's certificate (what
 * `init` sets up): the fingerprint agents pin at login. null when `tls.cert` comes from another
 * CA (a public one: system roots decide) or there is no TLS or PKI.
 */
export async function agentsCaFingerprint(config: RelayConfig): Promise<string | null> {
  if (config.tls === null || config.pki === null) return null
  let ca: X509Certificate
  let leaf: X509Certificate
  try {
    ca = new X509Certificate(await readFile(path.join(config.pki, 'ca.crt')))
    leaf = new X509Certificate(await readFile(config.tls.cert))
  } catch {
    return null
  }
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) return null
  return ca.fingerprint256.replace(/:/g, '').toLowerCase()
}
