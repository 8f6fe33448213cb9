import type { PublishResult } from '@porchlight/shared/protocol'
import { codes, isPorchlightError, type ErrorCode } from '@porchlight/shared/errors'

/** A rejected tunnel: the code and its message from the error table, filled with `args`. */
export function reject(id: string, code: ErrorCode, ...args: Array<string | number>): PublishResult {
  let i = 0
  const message = (codes[code].msg as string).replace(/%s/g, () => String(args[i++] ?? ''))
  return { id, ok: false, code, message }
}

export function resultFromError(id: string, err: unknown): PublishResult {
  if (isPorchlightError(err)) return { id, ok: false, code: err.code, message: err.message }
  return reject(id, 'PL_ERR_INTERNAL')
}
