import type { Server } from 'node:net'
import type { Socket } from 'node:net'

/**
 * Caps concurrent connections per client IP on a listener: excess connections are closed at
 * once, so one address cannot hoard sockets (slowloris, pre-auth floods). The table holds only
 * live connections, so it is bounded by the process's own socket count.
 */
export function limitConnectionsPerIp(server: Server, maxPerIp: number, onRefused?: (ip: string) => void): () => number {
  const live = new Map<string, number>()
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? ''
    const count = (live.get(ip) ?? 0) + 1
    if (count > maxPerIp) {
      onRefused?.(ip)
      socket.destroy()
      return
    }
    live.set(ip, count)
    socket.once('close', () => {
      const left = (live.get(ip) ?? 1) - 1
      if (left <= 0) live.delete(ip)
      else live.set(ip, left)
    })
  })
  return () => live.size
}
