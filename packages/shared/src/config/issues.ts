import { PorchlightError } from '../errors.js'

/** One problem in a config file, named by the key path the user wrote. */
export interface ConfigIssue {
  /** e.g. `agents.laptop.hosts[1]`; `(root)` for the document itself. */
  path: string
  message: string
}

export type PathSegment = string | number

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$|^[0-9][A-Za-z0-9_-]*$/

/** ["agents", "laptop", "hosts", 1] -> "agents.laptop.hosts[1]"; odd keys are quoted: a["b c"]. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (PLAIN_KEY.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out === '' ? '(root)' : out
}

/** One issue per line: `path: message`. */
export function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('\n')
}

/** The error every loader throws when validation finds problems; `details` holds the issues. */
export function configInvalid(source: string, issues: readonly ConfigIssue[]): PorchlightError {
  return new PorchlightError('PL_ERR_CONFIG_INVALID', [source, formatIssues(issues)], { details: [...issues] })
}

/** Collects issues with paths relative to a prefix; the loaders pass one of these around. */
export class IssueList {
  readonly issues: ConfigIssue[] = []

  add(path: readonly PathSegment[], message: string): void {
    this.issues.push({ path: formatPath(path), message })
  }

  get empty(): boolean {
    return this.issues.length === 0
  }
}

/** A short description of a config value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'nothing'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)
  return String(value)
}
