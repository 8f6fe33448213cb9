// The benchmark's origin, in a worker thread so it does not share the load generator's event loop.
// GET /1k answers 1 KiB; GET /bytes/N streams N bytes from a reused 64 KiB block.
import { createServer } from 'node:http'
import { parentPort } from 'node:worker_threads'

const ONE_KB = Buffer.alloc(1024, 'x')
const BLOCK = Buffer.alloc(64 * 1024, 'y')

const server = createServer((req, res) => {
  if (req.url === '/1k') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': ONE_KB.length })
    res.end(ONE_KB)
    return
  }
  const m = /^\/bytes\/(\d+)$/.exec(req.url ?? '')
  if (!m) { res.writeHead(404).end(); return }
  let left = Number(m[1])
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left })
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, BLOCK.length)
      left -= n
      if (!res.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) { res.once('drain', pump); return }
    }
    res.end()
  }
  pump()
})
server.keepAliveTimeout = 10_000
server.listen(0, '127.0.0.1', () => parentPort?.postMessage({ port: server.address().port }))
parentPort?.on('message', msg => { if (msg === 'close') { server.closeAllConnections(); server.close(() => process.exit(0)) } })
