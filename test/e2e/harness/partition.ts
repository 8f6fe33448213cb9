import { connect, createServer, type Socket } from 'node:net'
import type { Scope } from './scope.js'
import { listenEphemeral } from './tcp.js'

/**
 * A TCP hop between an agent and the relay that can drop the path without a FIN or RST, like a
 * network partition: blackhole() stops reading on both sides, so bytes wait in kernel buffers
 * and nothing arrives; connections opened meanwhile are accepted and held. heal() lets
 * everything flow again, the way TCP's retransmits deliver once a route comes back.
 */
export interface LinkProxy {
  port: number
  blackhole(): void
  heal(): void
}

interface Pair { near: Socket; far: Socket | null }

export async function startLinkProxy(t: Scope, targetPort: number, targetHost = '127.0.0.1'): Promise<LinkProxy> {
  const pairs = new Set<Pair>()
  let partitioned = false

  const join = (pair: Pair): void => {
    const far = connect({ port: targetPort, host: targetHost })
    far.setNoDelay(true)
    pair.far = far
    forward(pair.near, far)
    forward(far, pair.near)
    far.on('error', () => pair.near.destroy())
    far.on('close', () => pair.near.destroy())
  }

  // By hand rather than pipe(): pipe() resumes a source on 'drain', which would end a blackhole.
  const forward = (from: Socket, to: Socket): void => {
    from.on('data', (chunk: Buffer) => { if (!to.write(chunk)) from.pause() })
    to.on('drain', () => { if (!partitioned) from.resume() })
    from.on('end', () => to.end())
    from.resume()
  }

  const server = createServer({ pauseOnConnect: true }, (near) => {
    near.setNoDelay(true)
    const pair: Pair = { near, far: null }
    pairs.add(pair)
    near.on('error', () => pair.far?.destroy())
    near.on('close', () => { pair.far?.destroy(); pairs.delete(pair) })
    if (!partitioned) join(pair)
  })
  const port = await listenEphemeral(t, server, targetHost)
  t.teardown(() => { for (const p of pairs) { p.near.destroy(); p.far?.destroy() } })

  return {
    port,
    blackhole() {
      partitioned = true
      for (const p of pairs) { p.near.pause(); p.far?.pause() }
    },
    heal() {
      partitioned = false
      for (const p of pairs) {
        if (p.far) { p.near.resume(); p.far.resume() } else join(p)
      }
    },
  }
}
