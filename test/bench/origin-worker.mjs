// The benchmark's origin, in a worker thread so it does not share the load generator's event loop.
// GET /1k answers 1 KiB; GET /bytes/N streams N bytes from a reused 64 KiB block; POST /echo
// answers its body (same length); an Upgrade: websocket on /ws echoes every message.
import { createServer } from 'node:http'
import { parentPort } from 'node:worker_threads'
import { WebSocketServer } from 'ws'

const ONE_KB = Buffer.alloc(1024, 'x')
const BLOCK = Buffer.alloc(64 * 1024, 'y')

const server = createServer((req, res) => {
  if (req.url === '/1k') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': ONE_KB.length })
    res.end(ONE_KB)
    return
  }
  if (req.method === 'POST' && req.url === '/echo') {
    const length = req.headers['content-length']
    res.writeHead(200, length === undefined ? { 'content-type': 'application/octet-stream' } : { 'content-type': 'application/octet-stream', 'content-length': length })
    req.pipe(res)
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
const sockets = new WebSocketServer({ noServer: true, perMessageDeflate: false })
server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => socket.destroy())
  if (req.url !== '/ws') { socket.destroy(); return }
  sockets.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', () => ws.terminate())
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
  })
})
server.listen(0, '127.0.0.1', () => parentPort?.postMessage({ port: server.address().port }))
parentPort?.on('message', msg => { if (msg === 'close') { for (const ws of sockets.clients) ws.terminate(); server.closeAllConnections(); server.close(() => process.exit(0)) } })
