import t from 'tap'
import { formatDurationMs, parseDurationMs } from '../src/duration.js'

t.test('parseDurationMs table', async (t) => {
  const good: Array<[string, number]> = [
    ['30m', 1_800_000],
    ['24h', 86_400_000],
    ['7d', 604_800_000],
    ['90s', 90_000],
    ['1h30m', 5_400_000],
    ['2w', 1_209_600_000],
    [' 12H ', 43_200_000],
    ['365d', 31_536_000_000],
    ['52w1d', 31_536_000_000],
  ]
  for (const [text, ms] of good) t.equal(parseDurationMs(text), ms, text)
  const bad = ['', '24', 'h', '5y', '1.5h', '-1h', '0s', '366d', '52w2d', '8761h', '367d', '10 m', 'PT1H', '1h 30m', '9'.repeat(40) + 's']
  for (const text of bad) t.throws(() => parseDurationMs(text), { code: 'PL_ERR_USAGE' }, JSON.stringify(text))
})

t.test('formatDurationMs table', async (t) => {
  const table: Array<[number, string]> = [
    [0, '0ms'],
    [450, '450ms'],
    [1_000, '1s'],
    [61_000, '1m1s'],
    [5_400_000, '1h30m'],
    [90_061_000, '1d1h1m1s'],
  ]
  for (const [ms, text] of table) t.equal(formatDurationMs(ms), text, String(ms))
})
