import { once } from 'node:events'
import { memoryPair, sessionPair, rawPeer } from '../../test/mux/helpers.ts'
const t = { teardown: (_f: () => unknown) => {} }
const hold = setTimeout(() => {}, 3000)
const { client, server } = sessionPair(t, memoryPair(), { maxStreams: 3 }, { maxStreams: 2 })
server.on('stream', (s) => { console.log('server stream', s.id); s.resume().on('error', () => {}) })
const s1 = client.open(), s2 = client.open(), s3 = client.open()
s3.on('close', () => console.log('s3 close'))
s3.on('error', (e) => console.log('s3 error', e.message))
setTimeout(() => { console.log('counts', client.streamCount, server.streamCount, s3.destroyed); clearTimeout(hold) }, 200)
