import { randomBytes, createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { stringify } from 'yaml'

/** relay.yaml as the harness writes it; keys are exactly what a user types (PRODUCT.md). */
export interface RelayYaml {
  domain: string
  listen: { public: string; agents: string; admin: string | false; public_tls?: unknown }
  admin_token_sha256: string
  heartbeat?: { interval_ms: number; timeout_ms: number }
  limits?: Record<string, number | null>
  agents: Record<string, RelayAgentYaml>
  [key: string]: unknown
}

export interface RelayAgentYaml {
  token_sha256: string
  hosts: string[]
  tcp_ports?: Array<number | string>
  outbound?: string[]
  require_cert?: boolean
}

/** One entry of agent.yaml `tunnels`. */
export type TunnelYaml =
  | { http: string; to: string; host_header?: string; access?: Record<string, unknown> }
  | { tcp: number; to: string; allow_ips?: string[] }
  | { forward: string; to: string }

export interface AgentYaml {
  relay: string
  token: string
  inspect: string | false
  tunnels: TunnelYaml[]
  [key: string]: unknown
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/** A throwaway secret (agent or admin token) of the same shape `token new` prints. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url')
}

export function writeYaml(file: string, value: unknown): void {
  // Mode 0600: the agent warns about world-readable configs that hold literal tokens.
  writeFileSync(file, stringify(value), { mode: 0o600 })
}
