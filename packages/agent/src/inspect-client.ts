import http from 'node:http'
import { formatAddress, type Address } from '@porchlight/shared/config'
import { PorchlightError, codes, isPorchlightError, type ErrorCode } from '@porchlight/shared/errors'
import { findRuntimeAddresses, type RuntimeDeps } from './runtime-file.js'
import { agentConfigPath, resolveInspectAddress, type SettingsDeps } from './settings.js'

export const INSPECT_CLIENT_TIMEOUT_MS = 5_000

/**
 * One call to the running agent's status API. Nothing listening (or no answer) ->
 * PL_ERR_AGENT_NOT_RUNNING; an error answer -> a PorchlightError with the API's code and message.
 */
export function callInspect(address: Address, method: string, path: string, body?: unknown, timeoutMs = INSPECT_CLIENT_TIMEOUT_MS): Promise<unknown> {
  const where = formatAddress(address)
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body), 'utf8')
    const req = http.request({
      host: address.host,
      port: address.port,
      method,
      path,
      headers: {
        host: where,
        accept: 'application/json',
        ...(payload !== null ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
      },
      timeout: timeoutMs,
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', (err) => reject(new PorchlightError('PL_ERR_AGENT_NOT_RUNNING', [where], { cause: err })))
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', (err) => reject(new PorchlightError('PL_ERR_AGENT_NOT_RUNNING', [where], { cause: err })))
      res.on('end', () => {
        let parsed: unknown = null
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown
        } catch {
          reject(new PorchlightError('PL_ERR_AGENT_NOT_RUNNING', [`${where} (the answer is not from a porchlight agent)`]))
          return
        }
        if ((res.statusCode ?? 500) >= 400) reject(apiError(parsed))
        else resolve(parsed)
      })
    })
    req.end(payload ?? undefined)
  })
}

/**
 * A call to the running agent of `-c FILE` (or the default config), for `status` and `link`: its
 * configured status API first, then the addresses that live agent processes of the same config
 * recorded in their runtime files (the port they fell back to when the configured one was taken).
 */
export async function callAgent(configFlag: string | undefined, method: string, path: string, body?: unknown, deps: SettingsDeps & RuntimeDeps = {}): Promise<unknown> {
  const address = await resolveInspectAddress(configFlag, deps)
  try {
    return await callInspect(address, method, path, body)
  } catch (err) {
    if (!isPorchlightError(err) || err.code !== 'PL_ERR_AGENT_NOT_RUNNING') throw err
    const wanted = formatAddress(address)
    for (const other of findRuntimeAddresses(agentConfigPath(configFlag, deps), deps)) {
      if (formatAddress(other) === wanted) continue
      try {
        return await callInspect(other, method, path, body)
      } catch (e) {
        if (!isPorchlightError(e) || e.code !== 'PL_ERR_AGENT_NOT_RUNNING') throw e
      }
    }
    throw err
  }
}

function apiError(body: unknown): PorchlightError {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error
  const code = typeof error?.code === 'string' && error.code in codes ? (error.code as ErrorCode) : 'PL_ERR_INTERNAL'
  const err = new PorchlightError(code)
  if (typeof error?.message === 'string') Object.defineProperty(err, 'message', { value: error.message })
  return err
}
