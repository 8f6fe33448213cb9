import t from 'tap'
import { randomTunnelName } from '../src/names.js'

t.test('random names are DNS labels: two words and 4 hex digits', async (t) => {
  const names = new Set<string>()
  for (let i = 0; i < 200; i++) {
    const name = randomTunnelName()
    t.match(name, /^[a-z]+-[a-z]+-[0-9a-f]{4}$/)
    t.ok(name.length <= 63)
    names.add(name)
  }
  t.ok(names.size >= 195, `${names.size} distinct of 200`)
})
