import { open, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { PorchlightError } from '../errors.js'
import { parseAgentConfig } from './agent.js'
import type { AgentConfig } from './agent-schema.js'
import type { Loaded } from './loaded.js'
import { parseRelayConfig } from './relay.js'
import type { RelayConfig } from './relay-schema.js'
import { isSecretReference, secretFilePath } from './secret.js'
import { parseYamlConfig } from './yaml.js'

/**
 * The file half of the pipeline: read (size-capped) -> YAML (H9 defences) -> parse*Config
 * (validate, collect issues, defaults, secrets, freeze). `porchlight-relay check` is exactly
 * loadRelayConfig with no listeners.
 */
export const MAX_CONFIG_BYTES = 1024 * 1024
const WORLD_READABLE = 0o004

export async function loadRelayConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Loaded<RelayConfig>> {
  const { value, warnings, baseDir } = await readConfigFile(file)
  const loaded = parseRelayConfig(value, file, baseDir, env)
  return { config: loaded.config, warnings: [...warnings, ...loaded.warnings] }
}

export async function loadAgentConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Loaded<AgentConfig>> {
  const { value, warnings, baseDir, mode } = await readConfigFile(file)
  const loaded = parseAgentConfig(value, file, baseDir, env)
  const token = (value as { token?: unknown }).token
  if (typeof token === 'string' && !isSecretReference(token) && (mode & WORLD_READABLE) !== 0) {
    // SECURITY H7: warn, naming the file, when anyone on the machine can read the token.
    warnings.push(`${file}: readable by every user and contains a literal token; chmod 600 it or use token: env:NAME / file:/path`)
  }
  if (typeof token === 'string' && token.startsWith('file:')) {
    const secretFile = secretFilePath(token, baseDir, env)
    const secretMode = await stat(secretFile).then((st) => st.mode, () => 0)
    if ((secretMode & WORLD_READABLE) !== 0) warnings.push(`${secretFile}: token file is readable by every user; chmod 600 it`)
  }
  return { config: loaded.config, warnings: [...warnings, ...loaded.warnings] }
}

interface RawConfig {
  value: unknown
  warnings: string[]
  baseDir: string
  mode: number
}

async function readConfigFile(file: string): Promise<RawConfig> {
  const path = resolve(file)
  let text: string
  let mode: number
  try {
    const handle = await open(path, 'r')
    try {
      const st = await handle.stat()
      if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTFILE' })
      if (st.size > MAX_CONFIG_BYTES) throw Object.assign(new Error(`larger than ${MAX_CONFIG_BYTES} bytes`), { code: 'ETOOBIG' })
      mode = st.mode
      text = await handle.readFile('utf8')
    } finally {
      await handle.close()
    }
  } catch (err) {
    throw new PorchlightError('PL_ERR_CONFIG_READ', [file, readReason(err)], { cause: err })
  }
  const { value, warnings } = parseYamlConfig(text, file)
  return { value, warnings, baseDir: dirname(path), mode }
}

function readReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  switch (e.code) {
    case 'ENOENT': return 'no such file'
    case 'EACCES': return 'permission denied'
    case 'EISDIR': return 'is a directory'
    default: return e.message
  }
}
