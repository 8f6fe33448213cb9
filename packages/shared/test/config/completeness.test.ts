import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { agentSections } from '../../src/config/agent-schema.js'
import { relaySections } from '../../src/config/relay-schema.js'
import { tunnelSchemas } from '../../src/config/tunnel-schema.js'
import { parseYamlConfig } from '../../src/config/yaml.js'
import { everyKey } from './example-blocks.js'

/**
 * Every key the schemas accept appears in the full examples and in docs/configuration.md, so a
 * new key cannot ship undocumented. Key paths are read from the zod schemas themselves.
 */
const root = fileURLToPath(new URL('../../../../', import.meta.url))
const ctx = { baseDir: '/', env: {} }

interface Def { type: string; shape?: Record<string, unknown>; innerType?: unknown; valueType?: unknown; element?: unknown; in?: unknown }
const defOf = (schema: unknown): Def => (schema as { _zod: { def: Def } })._zod.def

/** Dotted key paths under a schema; record keys become "*", list entries "[]". */
function keyPaths(schema: unknown, prefix: string): string[] {
  const def = defOf(schema)
  switch (def.type) {
    case 'object':
      return Object.entries(def.shape ?? {}).flatMap(([k, v]) => [`${prefix}${k}`, ...keyPaths(v, `${prefix}${k}.`)])
    case 'default': case 'prefault': case 'nullable': case 'optional':
      return keyPaths(def.innerType, prefix)
    case 'record':
      return keyPaths(def.valueType, `${prefix}*.`)
    case 'array':
      return keyPaths(def.element, `${prefix.slice(0, -1)}[].`)
    case 'pipe':
      return keyPaths(def.in, prefix)
    default:
      return []
  }
}

function sectionPaths(sections: Record<string, unknown>): string[] {
  return Object.entries(sections).flatMap(([k, v]) => [k, ...keyPaths(v, `${k}.`)])
}

/** Dotted key paths present in a YAML example, in the same form (`agents` names become "*"). */
function examplePaths(value: unknown, prefix = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => examplePaths(v, `${prefix.slice(0, -1)}[].`))
  if (typeof value !== 'object' || value === null) return []
  return Object.entries(value).flatMap(([k, v]) => {
    const key = prefix === 'agents.' ? '*' : k
    return [`${prefix}${key}`, ...examplePaths(v, `${prefix}${key}.`)]
  })
}

// relay.yaml ships its file-naming blocks commented out (so a copy passes check): count them too.
const load = (name: string): unknown => {
  const text = readFileSync(`${root}deploy/examples/${name}`, 'utf8')
  // cluster.peer_tls stays commented inside the cluster block (it names files): read its keys too.
  const relay = (): string => everyKey(text).replace(/^(\s*)# (peer_tls:|  (?:cert|key|ca): \/etc\/porchlight\/peer\/)/gm, '$1$2')
  return parseYamlConfig(name === 'relay.yaml' ? relay() : text, name).value
}
const docs = readFileSync(`${root}docs/configuration.md`, 'utf8')

t.test('relay.yaml example and docs cover every relay key', (t) => {
  const keys = sectionPaths(relaySections(ctx))
  t.ok(keys.length >= 30, `found ${keys.length} relay keys`)
  t.same(keys.filter((k) => !examplePaths(load('relay.yaml')).includes(k)), [], 'keys missing from deploy/examples/relay.yaml')
  t.same(keys.filter((k) => !docs.includes(`\`${k.replace('*', 'NAME')}\``)), [], 'keys missing from docs/configuration.md')
  t.end()
})

t.test('agent.yaml example and docs cover every agent and tunnel key', (t) => {
  const top = sectionPaths(agentSections(ctx))
  const tunnel = Object.values(tunnelSchemas).flatMap((s) => keyPaths(s, 'tunnels[].'))
  const present = examplePaths(load('agent.yaml'))
  t.same([...top, ...tunnel].filter((k) => !present.includes(k)), [], 'keys missing from deploy/examples/agent.yaml')
  t.same(top.filter((k) => !docs.includes(`\`${k}\``)), [], 'top-level keys missing from docs')
  t.same(tunnel.map((k) => k.slice('tunnels[].'.length)).filter((k) => !docs.includes(`| \`${k}\``)), [], 'tunnel keys missing from docs')
  t.end()
})
