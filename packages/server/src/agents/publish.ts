import type { PublishResult, TunnelSpec } from '@porchlight/shared/protocol'
import { codes, isPorchlightError, type ErrorCode } from '@porchlight/shared/errors'
import { decideHost } from './policy.js'
import { accessRulesProblems } from '../access/decide.js'
import type { HttpRoute } from './registry.js'
import type { AgentSession } from './session.js'

/**
 * Applies an agent's `publish`: every tunnel is accepted (with its public URL) or rejected
 * with a code. The whole previous set of this session is replaced.
 */
export async function publishTunnels(session: AgentSession, tunnels: TunnelSpec[]): Promise<PublishResult[]> {
  const { ctx, agent } = session
  const policy = ctx.config.agents[agent]
  const results: PublishResult[] = []
  const routes: Array<Omit<HttpRoute, 'session' | 'agent'>> = []
  const seenHosts = new Set<string>()
  const wantedTcp: Array<{ spec: Extract<TunnelSpec, { kind: 'tcp' }>; index: number }> = []

  for (const spec of tunnels) {
    if (!policy) {
      results.push(reject(spec.id, 'PL_ERR_POLICY_HOST_DENIED', spec.id, agent))
      continue
    }
    if (spec.kind === 'tcp') {
      wantedTcp.push({ spec, index: results.length })
      results.push(reject(spec.id, 'PL_ERR_INTERNAL'))
      continue
    }
    const accessProblems = spec.access ? accessRulesProblems(spec.access) : []
    if (accessProblems.length > 0) {
      results.push({ id: spec.id, ok: false, code: 'PL_ERR_PROTO_BAD_MESSAGE', message: `invalid access rules: ${accessProblems.join('; ')}`.slice(0, 1024) })
      continue
    }
    const decision = decideHost(spec.host, ctx.config.domain, policy.hosts, ctx.reservedHosts)
    if (!decision.ok) {
      results.push(reject(spec.id, decision.code, decision.host, agent))
      continue
    }
    if (ctx.registry.ownedByOther(decision.host, agent) || seenHosts.has(decision.host)) {
      results.push(reject(spec.id, 'PL_ERR_POLICY_HOST_IN_USE', decision.host))
      continue
    }
    seenHosts.add(decision.host)
    routes.push({ host: decision.host, tunnelId: spec.id, access: spec.access ?? null })
    results.push({ id: spec.id, ok: true, url: ctx.publicUrl(decision.host) })
  }

  ctx.registry.setRoutes(session, routes)
  const tcpResults = await ctx.tcpPorts.apply(session, wantedTcp.map((w) => w.spec))
  wantedTcp.forEach((w, i) => { results[w.index] = tcpResults[i]! })

  for (const r of results) {
    if (r.ok) session.log.info({ tunnel: r.id, url: r.url }, 'tunnel published')
    else session.log.warn({ tunnel: r.id, code: r.code, reason: r.message }, 'tunnel rejected')
  }
  return results
}

/** Called when a session ends: its TCP ports stop listening, its hosts go offline (503). */
export function unpublishAll(session: AgentSession): void {
  void session.ctx.tcpPorts.apply(session, []).catch(() => undefined)
}

export function reject(id: string, code: ErrorCode, ...args: Array<string | number>): PublishResult {
  let i = 0
  const message = (codes[code].msg as string).replace(/%s/g, () => String(args[i++] ?? ''))
  return { id, ok: false, code, message }
}

export function resultFromError(id: string, err: unknown): PublishResult {
  if (isPorchlightError(err)) return { id, ok: false, code: err.code, message: err.message }
  return reject(id, 'PL_ERR_INTERNAL')
}
