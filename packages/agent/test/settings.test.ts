import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { defaultConfigPath, resolveInspectAddress, resolveQuickSettings, DEFAULT_INSPECT } from '../src/settings.js'

const FILE_TOKEN = 'file-token-0123456789-0123456789-0123456789'
const ENV_TOKEN = 'env-token-0123456789-0123456789-0123456789'

async function writeConfig(dir: string, text: string, name = 'agent.yaml'): Promise<string> {
  await mkdir(dir, { recursive: true })
  const file = join(dir, name)
  await writeFile(file, text)
  await chmod(file, 0o600)
  return file
}

t.test('defaultConfigPath: PORCHLIGHT_CONFIG > XDG_CONFIG_HOME > ~/.config', async (t) => {
  t.equal(defaultConfigPath({}, '/home/u'), '/home/u/.config/porchlight/agent.yaml')
  t.equal(defaultConfigPath({ XDG_CONFIG_HOME: '/xdg' }, '/home/u'), '/xdg/porchlight/agent.yaml')
  t.equal(defaultConfigPath({ XDG_CONFIG_HOME: 'relative' }, '/home/u'), '/home/u/.config/porchlight/agent.yaml')
  t.equal(defaultConfigPath({ PORCHLIGHT_CONFIG: '/etc/p/agent.yaml', XDG_CONFIG_HOME: '/xdg' }, '/home/u'), '/etc/p/agent.yaml')
})

t.test('quick settings precedence: flags > env > ~/.config file', async (t) => {
  const home = t.testdir()
  await writeConfig(join(home, '.config', 'porchlight'), `relay: wss://file.example:7443\ntoken: ${FILE_TOKEN}\ninspect: 127.0.0.1:4141\n`)
  const env = { HOME: home, PORCHLIGHT_RELAY: 'ws://env.example:1', PORCHLIGHT_TOKEN: ENV_TOKEN }

  const fromFile = await resolveQuickSettings({}, { env: { HOME: home }, homeDir: home })
  t.equal(fromFile.relay, 'wss://file.example:7443')
  t.equal(fromFile.token, FILE_TOKEN)
  t.same(fromFile.sources, { relay: 'config', token: 'config' })
  t.same(fromFile.inspect, { host: '127.0.0.1', port: 4141 })
  t.equal(fromFile.configFile, join(home, '.config', 'porchlight', 'agent.yaml'))

  const fromEnv = await resolveQuickSettings({}, { env, homeDir: home })
  t.equal(fromEnv.relay, 'ws://env.example:1')
  t.equal(fromEnv.token, ENV_TOKEN)
  t.same(fromEnv.sources, { relay: 'env', token: 'env' })

  const fromFlags = await resolveQuickSettings({ relay: 'ws://flag.example:2', token: 'flag-token' }, { env, homeDir: home })
  t.equal(fromFlags.relay, 'ws://flag.example:2')
  t.equal(fromFlags.token, 'flag-token')
  t.same(fromFlags.sources, { relay: 'flag', token: 'flag' })

  const mixed = await resolveQuickSettings({ relay: 'ws://flag.example:2' }, { env: { HOME: home, PORCHLIGHT_TOKEN: ENV_TOKEN }, homeDir: home })
  t.same([mixed.relay, mixed.token], ['ws://flag.example:2', ENV_TOKEN], 'per setting, not all-or-nothing')
})

t.test('no config file: env alone works, inspect defaults to 127.0.0.1:4040', async (t) => {
  const home = t.testdir()
  const s = await resolveQuickSettings({}, { env: { PORCHLIGHT_RELAY: 'ws://r:1', PORCHLIGHT_TOKEN: ENV_TOKEN }, homeDir: home })
  t.equal(s.configFile, null)
  t.same(s.inspect, DEFAULT_INSPECT)
  t.equal(s.cert, null)
})

t.test('nothing configured -> PL_ERR_USAGE naming every way to configure it', async (t) => {
  const home = t.testdir()
  await t.rejects(resolveQuickSettings({}, { env: {}, homeDir: home }), { code: 'PL_ERR_USAGE', message: /--relay URL, set PORCHLIGHT_RELAY, or write .*agent\.yaml/ })
  await t.rejects(resolveQuickSettings({ relay: 'ws://r:1' }, { env: {}, homeDir: home }), { code: 'PL_ERR_USAGE', message: /--token T, set PORCHLIGHT_TOKEN/ })
})

t.test('-c FILE and PORCHLIGHT_CONFIG must exist; a broken file is an error', async (t) => {
  const dir = t.testdir()
  await t.rejects(resolveQuickSettings({ config: join(dir, 'missing.yaml') }, { env: {}, homeDir: dir }), { code: 'PL_ERR_CONFIG_READ' })
  await t.rejects(resolveQuickSettings({}, { env: { PORCHLIGHT_CONFIG: join(dir, 'missing.yaml') }, homeDir: dir }), { code: 'PL_ERR_CONFIG_READ' })
  const broken = await writeConfig(dir, 'relay: [unclosed\n', 'broken.yaml')
  await t.rejects(resolveQuickSettings({ config: broken }, { env: {}, homeDir: dir }), { code: 'PL_ERR_CONFIG_YAML' })
  const viaEnv = await writeConfig(dir, `relay: ws://cfg:9\ntoken: ${FILE_TOKEN}\n`, 'other.yaml')
  const s = await resolveQuickSettings({}, { env: { PORCHLIGHT_CONFIG: viaEnv }, homeDir: dir })
  t.equal(s.relay, 'ws://cfg:9')
  t.equal(s.configFile, viaEnv)
})

t.test('--cert flag wins over the file; paths resolve against cwd', async (t) => {
  const dir = t.testdir()
  const file = await writeConfig(dir, `relay: wss://r:1\ntoken: ${FILE_TOKEN}\ncert: ./laptop.pem\n`)
  const fromFile = await resolveQuickSettings({ config: file }, { env: {}, homeDir: dir })
  t.equal(fromFile.cert, join(dir, 'laptop.pem'))
  const fromFlag = await resolveQuickSettings({ config: file, cert: 'other.pem' }, { env: {}, homeDir: dir, cwd: '/work' })
  t.equal(fromFlag.cert, '/work/other.pem')
})

t.test('resolveInspectAddress: -c file, default file, default address; unreadable secrets do not matter', async (t) => {
  const dir = t.testdir()
  t.same(await resolveInspectAddress(undefined, { env: {}, homeDir: dir }), DEFAULT_INSPECT)
  const withEnvToken = await writeConfig(dir, 'relay: ws://r:1\ntoken: env:ONLY_IN_THE_SERVICE\ninspect: 127.0.0.1:4999\n', 'a.yaml')
  t.same(await resolveInspectAddress(withEnvToken, { env: {}, homeDir: dir }), { host: '127.0.0.1', port: 4999 })
  const withFileToken = await writeConfig(dir, `relay: ws://r:1\ntoken: file:${join(dir, 'root-only-token')}\ninspect: 127.0.0.1:4998\n`, 'b.yaml')
  t.same(await resolveInspectAddress(withFileToken, { env: {}, homeDir: dir }), DEFAULT_INSPECT, 'falls back to the default')
  const disabled = await writeConfig(dir, `relay: ws://r:1\ntoken: ${FILE_TOKEN}\ninspect: false\n`, 'c.yaml')
  await t.rejects(resolveInspectAddress(disabled, { env: {}, homeDir: dir }), { code: 'PL_ERR_USAGE', message: /inspect is disabled/ })
  await t.rejects(resolveInspectAddress(join(dir, 'nope.yaml'), { env: {}, homeDir: dir }), { code: 'PL_ERR_CONFIG_READ' })
})
