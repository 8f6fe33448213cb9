import { isMap, isScalar, isSeq, parseDocument, type Document, type Pair, YAMLMap, YAMLSeq } from 'yaml'
import { PorchlightError } from '../errors.js'

/**
 * Edits the `agents:` section of relay.yaml text in place with the yaml Document API, so the
 * operator's comments, key order and formatting elsewhere survive `agent add|remove|allow`. The
 * caller validates the result with the relay loader before writing it.
 */
export interface AgentEntry {
  token_sha256: string
  require_cert: boolean
  hosts: string[]
  tcp_ports: Array<number | string>
  outbound: string[]
}

export interface AgentGrant {
  hosts?: string[]
  tcp_ports?: Array<number | string>
  outbound?: string[]
}

/** Adds agents.NAME; refuses a name that is already there (PL_ERR_CONFIG_AGENT_EXISTS). */
export function addAgentEntry(text: string, file: string, name: string, entry: AgentEntry, note?: string): string {
  const doc = parse(text, file)
  const agents = agentsMap(doc, true, file)!
  if (agents.has(name)) throw new PorchlightError('PL_ERR_CONFIG_AGENT_EXISTS', [name, file])
  const value: Record<string, unknown> = { token_sha256: entry.token_sha256 }
  if (entry.require_cert) value['require_cert'] = true
  value['hosts'] = entry.hosts
  if (entry.tcp_ports.length > 0) value['tcp_ports'] = entry.tcp_ports
  if (entry.outbound.length > 0) value['outbound'] = entry.outbound
  const node = doc.createNode(value) as YAMLMap
  for (const item of node.items) {
    if (isSeq(item.value)) item.value.flow = true
    // Hashes quoted as the docs and `token new` print them.
    if (isScalar(item.value) && typeof item.value.value === 'string') item.value.type = 'QUOTE_DOUBLE'
  }
  const pair = doc.createPair(name, node) as Pair
  if (note !== undefined && isScalar(pair.key)) pair.key.commentBefore = ` ${note}`
  agents.items.push(pair)
  // `agents: {}` (as init writes it) becomes a block map once it has an entry.
  agents.flow = false
  return doc.toString({ lineWidth: 0 })
}

/** Removes agents.NAME (PL_ERR_CONFIG_AGENT_UNKNOWN when it is not there). */
export function removeAgentEntry(text: string, file: string, name: string): string {
  const doc = parse(text, file)
  const agents = agentsMap(doc, false, file)
  if (agents === null || !agents.has(name)) throw new PorchlightError('PL_ERR_CONFIG_AGENT_UNKNOWN', [name, file])
  agents.delete(name)
  return doc.toString({ lineWidth: 0 })
}

/**
 * Appends to agents.NAME's hosts / tcp_ports / outbound; entries already listed are skipped.
 * Returns the new text and what was actually added.
 */
export function allowAgentEntry(text: string, file: string, name: string, grant: AgentGrant): { text: string; added: AgentGrant } {
  const doc = parse(text, file)
  const agents = agentsMap(doc, false, file)
  const agent = agents?.get(name, true)
  if (agents === null || agent === undefined) throw new PorchlightError('PL_ERR_CONFIG_AGENT_UNKNOWN', [name, file])
  if (!isMap(agent)) throw new PorchlightError('PL_ERR_CONFIG_INVALID', [file, `agents.${name}: expected a map`])
  const added: AgentGrant = {}
  for (const key of ['hosts', 'tcp_ports', 'outbound'] as const) {
    const wanted = grant[key]
    if (wanted === undefined || wanted.length === 0) continue
    let seq: unknown = agent.get(key, true)
    if (seq === undefined || seq === null || (isScalar(seq) && seq.value === null)) {
      const created = new YAMLSeq()
      created.flow = true
      agent.set(key, created)
      seq = created
    }
    if (!isSeq(seq)) throw new PorchlightError('PL_ERR_CONFIG_INVALID', [file, `agents.${name}.${key}: expected a list`])
    const present = new Set(seq.items.map((i) => String(isScalar(i) ? i.value : i)))
    const fresh = (wanted as Array<string | number>).filter((v) => !present.has(String(v)))
    for (const v of fresh) seq.add(doc.createNode(v))
    if (fresh.length > 0) (added as Record<string, unknown>)[key] = fresh
  }
  return { text: doc.toString({ lineWidth: 0 }), added }
}

function parse(text: string, file: string): Document {
  const doc = parseDocument(text, { prettyErrors: false })
  if (doc.errors.length > 0) throw new PorchlightError('PL_ERR_CONFIG_YAML', [file, doc.errors[0]!.message.split('\n')[0] ?? 'invalid YAML'])
  if (doc.contents !== null && !isMap(doc.contents)) throw new PorchlightError('PL_ERR_CONFIG_INVALID', [file, 'the top level must be a map of keys'])
  return doc
}

/** The `agents` map; created (block style, at the end) when `create` and it is missing or empty. */
function agentsMap(doc: Document, create: boolean, file: string): YAMLMap | null {
  if (doc.contents === null) {
    if (!create) return null
    doc.contents = new YAMLMap() as never
  }
  const root = doc.contents as unknown as YAMLMap
  const current = root.get('agents', true)
  if (isMap(current)) return current
  if (current !== undefined && !(isScalar(current) && current.value === null)) {
    throw new PorchlightError('PL_ERR_CONFIG_INVALID', [file, 'agents: expected a map of agent names'])
  }
  if (!create) return null
  const map = new YAMLMap()
  root.set('agents', map)
  return map
}
