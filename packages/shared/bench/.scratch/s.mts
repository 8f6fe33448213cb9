import { collect, sessionPair, tcpPair, waitFor } from '../../test/mux/helpers.ts'
const t = { teardown: (_f: () => unknown) => {} }
const { client, server } = sessionPair(t, await tcpPair(t), { maxStreams: 20_000 })
const held: any[] = []
server.on('stream', (s) => { held.push(s); s.on('error', () => {}) })
const streams = Array.from({ length: 10_000 }, () => client.open())
streams.forEach((s, i) => s.write(`#${i}`))
await waitFor(() => held.length === 10_000, 20_000)
for (const s of held) s.once('data', (c: Buffer) => s.end(c))
const replies = await Promise.all(streams.map((s) => { s.end(); return collect(s) }))
replies.forEach((r, i) => { if (r.toString() !== `#${i}`) console.log(i, JSON.stringify(r.toString()), streams[i].id, held[i].id, held[i].readableLength) })
process.exit(0)
