import { PorchlightError } from '../errors.js'
import { deepFreeze } from './freeze.js'
import { configInvalid, IssueList } from './issues.js'
import type { Loaded } from './loaded.js'
import { checkRelay } from './relay-checks.js'
import { relaySections, type RelayConfig } from './relay-schema.js'
import { isSecretReference, resolveSecret } from './secret.js'
import { validateSections } from './sections.js'
import { isSha256Hex } from './value-fields.js'

/**
 * Validates an already-parsed relay.yaml value: every issue is collected and thrown together as
 * one PL_ERR_CONFIG_INVALID; then env:/file: hashes are resolved (PL_ERR_CONFIG_SECRET); the
 * result has every default filled in and is deep-frozen. `source` names the file in errors;
 * relative paths are resolved against `baseDir`.
 */
export function parseRelayConfig(value: unknown, source: string, baseDir: string, env: NodeJS.ProcessEnv = process.env): Loaded<RelayConfig> {
  const issues = new IssueList()
  const s = validateSections(value, relaySections({ baseDir, env }), issues)
  const warnings = checkRelay(s, issues)
  if (!issues.empty) throw configInvalid(source, issues.issues)
  const { domain, listen, tls, pki, state, admin_token_sha256, trust_proxy, acme, redirect_http, heartbeat, limits, agents, cluster } = s
  if (domain === undefined || listen === undefined || tls === undefined || pki === undefined || state === undefined ||
    admin_token_sha256 === undefined || trust_proxy === undefined || acme === undefined || redirect_http === undefined ||
    heartbeat === undefined || limits === undefined || agents === undefined || cluster === undefined) {
    // Unreachable: a section is missing only when it recorded an issue.
    throw new PorchlightError('PL_ERR_INTERNAL', [], { details: 'relay config section missing without an issue' })
  }
  const hash = (spec: string, label: string): string => {
    if (!isSecretReference(spec)) return spec
    const resolved = resolveSecret(spec, { env, baseDir, label: `${label} (${spec})` }).toLowerCase()
    if (!isSha256Hex(resolved)) throw new PorchlightError('PL_ERR_CONFIG_SECRET', [`${label} (${spec})`, 'expected 64 hex characters (a SHA-256)'])
    return resolved
  }
  const config: RelayConfig = {
    domain,
    listen,
    tls,
    pki,
    state,
    admin_token_sha256: admin_token_sha256 === null ? null : hash(admin_token_sha256, 'admin_token_sha256'),
    trust_proxy,
    acme,
    redirect_http,
    heartbeat,
    limits,
    agents: Object.fromEntries(Object.entries(agents).map(([name, p]) => [name, { ...p, token_sha256: hash(p.token_sha256, `agents.${name}.token_sha256`) }])),
    cluster,
  }
  return { config: deepFreeze(config), warnings }
}
