import { formatIssues, loadAgentConfig, type ConfigIssue } from '@porchlight/shared/config'
import { isPorchlightError } from '@porchlight/shared/errors'
import type { CliIo } from '../cli-io.js'
import { defaultConfigPath } from '../settings.js'
import { readCaFile, readCertBundle } from '../tls-bundle.js'

/**
 * `porchlight check [-c agent.yaml]`: the loader `up` uses, plus the files it would read when it
 * connects (`cert:` bundle, `ca:`), with no connection. 0 when valid; 1 with every problem, in
 * the same form as `porchlight-relay check`.
 */
export async function runAgentCheck(opts: { config?: string | undefined }, io: CliIo): Promise<number> {
  const file = opts.config ?? defaultConfigPath()
  try {
    const { config, warnings } = await loadAgentConfig(file)
    for (const w of warnings) io.out(`warning: ${w}`)
    const issues: ConfigIssue[] = []
    if (config.cert !== null) await readCertBundle(config.cert).catch((err: Error) => { issues.push({ path: 'cert', message: err.message }) })
    if (config.ca !== null) await readCaFile(config.ca).catch((err: Error) => { issues.push({ path: 'ca', message: err.message }) })
    if (issues.length > 0) {
      io.err(`PL_ERR_TLS_FILE: ${file} is invalid\n${formatIssues(issues)}`)
      return 1
    }
    io.out(`${file}: ok (${config.tunnels.length} tunnel${config.tunnels.length === 1 ? '' : 's'}, relay ${config.relay})`)
    return 0
  } catch (err) {
    if (!isPorchlightError(err)) throw err
    const issues = (err as { details?: unknown }).details
    if (Array.isArray(issues)) io.err(`${err.code}: ${file} is invalid\n${formatIssues(issues as ConfigIssue[])}`)
    else io.err(`${err.code}: ${err.message}`)
    return 1
  }
}
