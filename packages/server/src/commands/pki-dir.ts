import path from 'node:path'
import { loadRelayConfig } from '@porchlight/shared/config'
import { PorchlightError } from '@porchlight/shared/errors'
import { findDefaultRelayConfig } from './relay-config.js'

/**
 * The PKI directory of `ca` and `cert` commands: `--pki DIR` wins; else the `pki:` of `-c
 * relay.yaml`, or of the relay.yaml found without `-c` (PORCHLIGHT_RELAY_CONFIG, ./relay.yaml,
 * /etc/porchlight/relay.yaml), so the commands the docs show work without repeating the path;
 * else ./pki.
 */
export async function resolvePkiDir(o: { pki?: string; config?: string }, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<string> {
  if (o.pki) return path.resolve(cwd, o.pki)
  const file = o.config !== undefined ? path.resolve(cwd, o.config) : await findDefaultRelayConfig(env, cwd)
  if (file === null) return path.resolve(cwd, 'pki')
  const { config } = await loadRelayConfig(file, env)
  if (!config.pki) throw new PorchlightError('PL_ERR_USAGE', [`${file} has no pki: directory; add one (e.g. pki: /var/lib/porchlight/pki) or pass --pki DIR`])
  return config.pki
}
