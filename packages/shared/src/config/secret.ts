import { readFileSync, statSync } from 'node:fs'
import { PorchlightError } from '../errors.js'
import { requireString } from './fields.js'
import { resolveConfigPath } from './paths.js'

/**
 * Secrets in config files may be written three ways: a literal, `env:NAME` (read from the
 * environment) or `file:/path` (read from a file, surrounding whitespace trimmed; relative paths
 * are relative to the config file). Validation only checks the syntax; values are read after
 * the whole file has validated, and a failure is PL_ERR_CONFIG_SECRET.
 */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const MAX_SECRET_FILE_BYTES = 64 * 1024

export interface SecretOptions {
  env?: NodeJS.ProcessEnv
  /** Directory that relative `file:` paths are resolved against (the config file's directory). */
  baseDir?: string
  /** How to name the secret in errors, e.g. `token (env:PORCHLIGHT_TOKEN)`; default: the reference. */
  label?: string
}

export function isSecretReference(value: string): boolean {
  return value.startsWith('env:') || value.startsWith('file:')
}

/** Schema-time check: a non-empty literal, `env:NAME` with a valid name, or `file:` with a path. */
export function checkSecretSyntax(value: unknown): string {
  const text = requireString(value, 'a secret (literal, env:NAME or file:/path)')
  if (text.startsWith('env:') && !ENV_NAME.test(text.slice(4))) {
    throw new Error(`invalid environment variable name in ${JSON.stringify(text)}`)
  }
  if (text.startsWith('file:') && text.length === 5) throw new Error('"file:" needs a path')
  return text
}

/** The secret's value. Never puts the value itself in an error message. */
export function resolveSecret(spec: string, opts: SecretOptions = {}): string {
  const env = opts.env ?? process.env
  const label = opts.label ?? spec
  if (spec.startsWith('env:')) {
    const name = spec.slice(4)
    if (!ENV_NAME.test(name)) throw new PorchlightError('PL_ERR_CONFIG_SECRET', [label, 'invalid environment variable name'])
    const value = env[name]
    if (value === undefined || value === '') throw new PorchlightError('PL_ERR_CONFIG_SECRET', [label, `environment variable ${name} is not set`])
    return value
  }
  if (spec.startsWith('file:')) return readSecretFile(secretFilePath(spec, opts.baseDir ?? process.cwd(), env), label)
  if (spec === '') throw new PorchlightError('PL_ERR_CONFIG_SECRET', [label, 'empty secret'])
  return spec
}

/** The absolute path a `file:` reference points at. */
export function secretFilePath(spec: string, baseDir: string, env: NodeJS.ProcessEnv): string {
  return resolveConfigPath(spec.slice(5), baseDir, env)
}

function readSecretFile(file: string, label: string): string {
  let text: string
  try {
    const size = statSync(file).size
    if (size > MAX_SECRET_FILE_BYTES) throw new Error(`${file} is larger than ${MAX_SECRET_FILE_BYTES} bytes`)
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const reason = e.code === 'ENOENT' ? `${file} does not exist` : e.code === 'EACCES' ? `permission denied reading ${file}` : e.message
    throw new PorchlightError('PL_ERR_CONFIG_SECRET', [label, reason], { cause: err })
  }
  const value = text.trim()
  if (value === '') throw new PorchlightError('PL_ERR_CONFIG_SECRET', [label, `${file} is empty`])
  return value
}
