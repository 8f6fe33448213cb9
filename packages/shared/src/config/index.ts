/**
 * @porchlight/shared/config: relay.yaml and agent.yaml loading (read -> YAML -> strict
 * validation with every issue collected -> secrets -> defaults -> deep-freeze) and the value
 * parsers the relay and agent reuse (addresses, hostnames and patterns, port ranges).
 */
export { formatAddress, parseAddress, parseDialTarget, parseLocalAddress, parsePort, type Address } from './address.js'
export { AGENT_DEFAULTS, parseByteSize, type AccessConfig, type AgentConfig, type AgentTunnel, type InspectCapture } from './agent-schema.js'
export { parseAgentConfig } from './agent.js'
export { normalizeCidr } from './cidr.js'
export { hostMatchesPattern, isLoopbackHost, normalizeHostname, normalizeHostPattern } from './hostname.js'
export { formatIssues, formatPath, type ConfigIssue } from './issues.js'
export { loadAgentConfig, loadRelayConfig, MAX_CONFIG_BYTES } from './load.js'
export type { Loaded } from './loaded.js'
export { normalizeOutboundEntry } from './outbound.js'
export { describeProxy, parseProxyUrl } from './proxy-url.js'
export { randomTunnelName } from './random-name.js'
export { formatPortRange, parsePortRange, type PortRange } from './port-range.js'
export { AGENT_NAME, AGENTS_SHARED_PATH, RELAY_DEFAULTS, type AcmeChallenge, type RelayAcme, type RelayAgentPolicy, type RelayConfig } from './relay-schema.js'
export { parseRelayConfig } from './relay.js'
export { CLUSTER_DEFAULTS, MEMBER_ID, MIN_CLUSTER_SECRET_BYTES, type RelayCluster } from './cluster-schema.js'
export { isSecretReference, resolveSecret, type SecretOptions } from './secret.js'
export { normalizeHttpTarget } from './tunnel-schema.js'
