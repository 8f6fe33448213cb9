import { formatIssues, loadRelayConfig, type ConfigIssue } from '@porchlight/shared/config'
import { isPorchlightError } from '@porchlight/shared/errors'
import { loadRevokedSerials } from '@porchlight/shared/pki/runtime'

/** Same loader as `serve`, no listeners: 0 when valid, 1 with every problem listed. */
export async function runCheck(opts: { config: string }, print: (line: string) => void): Promise<number> {
  try {
    const { config, warnings } = await loadRelayConfig(opts.config)
    // The relay refuses to start on a revocation list it cannot read (fail closed); so does check.
    if (config.pki) loadRevokedSerials(config.pki)
    for (const w of warnings) print(`warning: ${w}`)
    print(`${opts.config}: ok (${Object.keys(config.agents).length} agents)`)
    return 0
  } catch (err) {
    if (isPorchlightError(err)) {
      const issues = (err as { details?: unknown }).details
      if (Array.isArray(issues)) {
        process.stderr.write(`${err.code}: ${opts.config} is invalid\n${formatIssues(issues as ConfigIssue[])}\n`)
      } else {
        process.stderr.write(`${err.code}: ${err.message}\n`)
      }
      return 1
    }
    throw err
  }
}
