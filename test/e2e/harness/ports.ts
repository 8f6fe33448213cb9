import { createServer } from 'node:net'

/**
 * A port that was free a moment ago on host. Only for programs that cannot listen on port 0 and
 * report back (nginx); there is a small race, so callers retry on EADDRINUSE.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => resolve())
  })
  const address = server.address()
  await new Promise<void>(resolve => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error(`freePort: no port bound on ${host}`)
  return address.port
}

/** Splits "127.0.0.1:41234" / "[::1]:80" into host and port. */
export function splitHostPort(text: string): { host: string; port: number } {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(text)
  if (!m || m[1] === undefined || m[2] === undefined) throw new Error(`not a host:port address: ${JSON.stringify(text)}`)
  return { host: m[1], port: Number(m[2]) }
}
