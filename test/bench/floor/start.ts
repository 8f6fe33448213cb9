import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ChildHandle, nodeCommand } from '../../e2e/harness/child.js'
import type { Scope } from '../../e2e/harness/scope.js'
import { ROOT } from '../../e2e/harness/processes.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const READY_MS = 10_000

/**
 * Starts the design floor (relay.mjs + agent.mjs in this folder) in front of an origin; resolves
 * with the floor's public port once its agent is linked. Both stop with the scope.
 */
export async function startFloor(scope: Scope, originPort: number): Promise<number> {
  return (await startFloorProcesses(scope, originPort)).port
}

/** startFloor, also giving the pids of the floor's relay and agent (for CPU per request). */
export async function startFloorProcesses(scope: Scope, originPort: number): Promise<{ port: number; pids: number[] }> {
  const spawnFloor = (label: string, script: string, args: string[]): ChildHandle =>
    new ChildHandle(scope, { label, ...nodeCommand(join(HERE, script), args), env: process.env, cwd: ROOT })
  const relay = spawnFloor('floor relay', 'relay.mjs', [])
  const ports = JSON.parse(await relay.waitForLine('stdout', /^\{"public"/, READY_MS, 'floor relay ports')) as { public: number; agents: number }
  const agent = spawnFloor('floor agent', 'agent.mjs', [String(ports.agents), String(originPort)])
  await agent.waitForLine('stdout', /^connected$/, READY_MS, 'floor agent link')
  return { port: ports.public, pids: [relay.pid, agent.pid] }
}
