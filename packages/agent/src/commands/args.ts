import { PorchlightError } from '@porchlight/shared/errors'

/**
 * Command-line argument checks for the quick modes. Anything wrong here is bad usage (exit 2);
 * deeper validation happens in the config loader.
 */
export function parsePortArg(text: string, what: string, min = 1): number {
  const trimmed = text.trim()
  const port = /^\d{1,5}$/.test(trimmed) ? Number(trimmed) : NaN
  if (!(port >= min && port <= 65535)) throw new PorchlightError('PL_ERR_USAGE', [`${what} must be a port number (${min}-65535), got "${text}"`])
  return port
}

/** `http` target: a port, host:port, or an http(s):// URL. */
export function parseHttpTarget(text: string): string {
  const trimmed = text.trim()
  if (/^\d+$/.test(trimmed)) return String(parsePortArg(trimmed, 'PORT'))
  if (/^https?:\/\//i.test(trimmed)) {
    try {
      new URL(trimmed)
      return trimmed
    } catch {
      throw new PorchlightError('PL_ERR_USAGE', [`"${text}" is not a valid URL`])
    }
  }
  if (/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+):\d{1,5}$/i.test(trimmed)) return trimmed
  throw new PorchlightError('PL_ERR_USAGE', [`expected PORT, HOST:PORT or http(s)://HOST:PORT, got "${text}"`])
}

/** A local address: a port (on 127.0.0.1) or host:port. */
export function parseLocalArg(text: string, what: string): string {
  const trimmed = text.trim()
  if (/^\d+$/.test(trimmed)) return `127.0.0.1:${parsePortArg(trimmed, what)}`
  if (/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+):\d{1,5}$/i.test(trimmed)) return trimmed
  throw new PorchlightError('PL_ERR_USAGE', [`${what} must be PORT or HOST:PORT, got "${text}"`])
}

/** A destination the relay dials: host:port. */
export function parseDestinationArg(text: string): string {
  const trimmed = text.trim()
  if (/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+):\d{1,5}$/i.test(trimmed)) return trimmed
  throw new PorchlightError('PL_ERR_USAGE', [`destination must be HOST:PORT, got "${text}"`])
}
