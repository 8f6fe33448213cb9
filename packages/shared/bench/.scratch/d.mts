import { runMuxBench } from './dbg.mts'
console.log(await runMuxBench({ durationMs: 1000 }))
