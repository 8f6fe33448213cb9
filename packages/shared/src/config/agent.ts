import { PorchlightError } from '../errors.js'
import { agentSections, type AgentConfig, type AgentTunnel } from './agent-schema.js'
import { checkAgent } from './agent-checks.js'
import { deepFreeze } from './freeze.js'
import { configInvalid, IssueList } from './issues.js'
import type { Loaded } from './loaded.js'
import { resolveSecret } from './secret.js'
import { validateSections } from './sections.js'
import { parseTunnel } from './tunnel-schema.js'

/** Tokens from `porchlight-relay token new` are 43 characters; anything much shorter is guessable. */
const MIN_TOKEN_CHARS = 32
// The token goes into an Authorization header: visible ASCII only.
const TOKEN_CHARS = /^[\x21-\x7e]+$/

/**
 * Validates an already-parsed agent.yaml value: every issue is collected and thrown together as
 * one PL_ERR_CONFIG_INVALID; then the token's env:/file: reference is resolved
 * (PL_ERR_CONFIG_SECRET); the result is complete and deep-frozen. Paths (`cert`, `ca`, `file:`)
 * are resolved against `baseDir`, `~` against HOME from `env`.
 */
export function parseAgentConfig(value: unknown, source: string, baseDir: string, env: NodeJS.ProcessEnv = process.env): Loaded<AgentConfig> {
  const issues = new IssueList()
  const s = validateSections(value, agentSections({ baseDir, env }), issues)
  const tunnels: Array<{ index: number; tunnel: AgentTunnel }> = []
  s.tunnels?.forEach((entry, index) => {
    const tunnel = parseTunnel(entry, ['tunnels', index], issues)
    if (tunnel) tunnels.push({ index, tunnel })
  })
  const warnings = checkAgent(s.relay, tunnels, s.inspect, issues)
  if (!issues.empty) throw configInvalid(source, issues.issues)
  const { relay, token, cert, ca, inspect, inspect_capture, proxy } = s
  if (relay === undefined || token === undefined || cert === undefined || ca === undefined || inspect === undefined || inspect_capture === undefined || proxy === undefined) {
    // Unreachable: a section is missing only when it recorded an issue.
    throw new PorchlightError('PL_ERR_INTERNAL', [], { details: 'agent config section missing without an issue' })
  }
  const label = token.startsWith('env:') || token.startsWith('file:') ? `token (${token})` : 'token'
  const resolved = resolveSecret(token, { env, baseDir, label })
  if (!TOKEN_CHARS.test(resolved)) throw new PorchlightError('PL_ERR_CONFIG_SECRET', [label, 'the token contains spaces or control characters'])
  if (resolved.length < MIN_TOKEN_CHARS) {
    warnings.push(`token: shorter than ${MIN_TOKEN_CHARS} characters; use one from \`porchlight-relay token new NAME\``)
  }
  const config: AgentConfig = { relay, token: resolved, cert, ca, tunnels: tunnels.map((t) => t.tunnel), inspect, inspect_capture, proxy }
  return { config: deepFreeze(config), warnings }
}
