import { PorchlightError } from '@porchlight/shared/errors'
import type { CliIo } from '../cli-io.js'
import { parseDurationMs } from '../duration.js'
import { callAgent } from '../inspect-client.js'

interface LinkOptions {
  config?: string | undefined
  json?: boolean
}

/** `porchlight link create HOSTNAME [--expires 24h] [--note T]`: prints the share link URL. */
export async function runLinkCreate(host: string, options: LinkOptions & { expires?: string | undefined; note?: string | undefined }, io: CliIo): Promise<number> {
  const expiresMs = options.expires === undefined ? undefined : parseDurationMs(options.expires)
  if (options.note !== undefined && options.note.length > 200) throw new PorchlightError('PL_ERR_USAGE', ['--note is limited to 200 characters'])
  const link = (await callAgent(options.config, 'POST', '/api/links', {
    host,
    ...(expiresMs !== undefined ? { expires: expiresMs } : {}),
    ...(options.note !== undefined ? { note: options.note } : {}),
  })) as { url?: unknown }
  if (options.json === true) io.out(JSON.stringify(link, null, 2))
  else io.out(typeof link.url === 'string' ? link.url : JSON.stringify(link))
  return 0
}

/** `porchlight link list`: id, host, expiry, note of this agent's share links. */
export async function runLinkList(options: LinkOptions, io: CliIo): Promise<number> {
  const answer = (await callAgent(options.config, 'GET', '/api/links')) as { links?: unknown }
  const links = Array.isArray(answer.links) ? (answer.links as Array<Record<string, unknown>>) : []
  if (options.json === true) {
    io.out(JSON.stringify(links, null, 2))
    return 0
  }
  for (const line of formatLinks(links)) io.out(line)
  return 0
}

/** `porchlight link revoke ID`. */
export async function runLinkRevoke(id: string, options: LinkOptions, io: CliIo): Promise<number> {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) throw new PorchlightError('PL_ERR_USAGE', [`"${id}" is not a link id (see porchlight link list)`])
  await callAgent(options.config, 'DELETE', `/api/links/${id}`)
  io.out(`revoked ${id}`)
  return 0
}

/** A small table; tolerant of fields the relay may add or omit. */
export function formatLinks(links: Array<Record<string, unknown>>): string[] {
  if (links.length === 0) return ['no share links']
  const rows = links.map((l) => [
    String(l['id'] ?? ''),
    String(l['host'] ?? ''),
    l['revoked'] === true ? 'revoked' : formatTime(l['expiresAt'] ?? l['expires_at']),
    String(l['note'] ?? ''),
  ])
  const header = ['ID', 'HOST', 'EXPIRES', 'NOTE']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const format = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [format(header), ...rows.map(format)]
}

function formatTime(value: unknown): string {
  if (typeof value === 'number') return new Date(value).toISOString()
  if (typeof value === 'string') return value
  return '?'
}
