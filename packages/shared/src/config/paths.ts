import { homedir } from 'node:os'
import { isAbsolute, resolve } from 'node:path'
import { requireString } from './fields.js'

/**
 * A path written in a config file: "~/" means the user's home (HOME from the given env, else the
 * OS's idea of it) and relative paths are relative to the config file's directory, so a config
 * behaves the same whatever directory the command was started from.
 */
export function resolveConfigPath(value: unknown, baseDir: string, env: NodeJS.ProcessEnv): string {
  const text = requireString(value, 'a path')
  if (text.includes('\0')) throw new Error('path contains a NUL character')
  if (text === '~' || text.startsWith('~/')) return resolve(homeDir(env), text.slice(2))
  if (text.startsWith('~')) throw new Error(`"~user" paths are not supported: ${JSON.stringify(text)}`)
  return isAbsolute(text) ? resolve(text) : resolve(baseDir, text)
}

function homeDir(env: NodeJS.ProcessEnv): string {
  const home = env['HOME']
  return typeof home === 'string' && isAbsolute(home) ? home : homedir()
}
