import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ChildHandle, nodeCommand } from '../../e2e/harness/child.js'
import type { Scope } from '../../e2e/harness/scope.js'
import { ROOT } from '../../e2e/harness/processes.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const READY_MS = 10_000

/**
 * 'per-connection': the floor under rule 2 as a property (one mux stream per visitor connection,
 * the agent copies bytes to its own origin socket). 'per-request': the old floor (one stream per
 * request, re-serialised by an HTTP client on the agent).
 */
export type FloorDesign = 'per-connection' | 'per-request'

export interface Floor { port: number; pids: number[] }

/** Starts a floor's relay and agent in front of an origin; resolves once its agent is linked. Both stop with the scope. */
export async function startFloor(scope: Scope, originPort: number, design: FloorDesign = 'per-connection'): Promise<Floor> {
  const spawnFloor = (label: string, script: string, args: string[]): ChildHandle =>
    new ChildHandle(scope, { label, ...nodeCommand(join(HERE, script), args), env: process.env, cwd: ROOT })
  const relay = spawnFloor(`floor relay (${design})`, `${design}-relay.mjs`, [])
  const ports = JSON.parse(await relay.waitForLine('stdout', /^\{"public"/, READY_MS, 'floor relay ports')) as { public: number; agents: number }
  const agent = spawnFloor(`floor agent (${design})`, `${design}-agent.mjs`, [String(ports.agents), String(originPort)])
  await agent.waitForLine('stdout', /^connected$/, READY_MS, 'floor agent link')
  return { port: ports.public, pids: [relay.pid, agent.pid] }
}
