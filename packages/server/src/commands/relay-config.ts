import path from 'node:path'
import { PorchlightError } from '@porchlight/shared/errors'
import { fileExists } from '@porchlight/shared/fs'

/** Where `porchlight-relay init` puts relay.yaml unless told otherwise (the systemd unit reads it). */
export const DEFAULT_CONFIG_DIR = '/etc/porchlight'
/** Where init puts pki/ and state/ when --dir is not given (the unit's StateDirectory). */
export const DEFAULT_DATA_DIR = '/var/lib/porchlight'

/**
 * The relay.yaml a command without `-c` uses: $PORCHLIGHT_RELAY_CONFIG (must exist when set), else
 * ./relay.yaml, else /etc/porchlight/relay.yaml, the first that exists. null when none does.
 */
export async function findDefaultRelayConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<string | null> {
  const explicit = env['PORCHLIGHT_RELAY_CONFIG']
  if (explicit !== undefined && explicit.trim() !== '') return path.resolve(cwd, explicit)
  for (const candidate of [path.join(cwd, 'relay.yaml'), path.join(DEFAULT_CONFIG_DIR, 'relay.yaml')]) {
    if (await fileExists(candidate)) return candidate
  }
  return null
}

/** `-c FILE` as given, else the default search; PL_ERR_CONFIG_READ naming every place looked at. */
export async function resolveRelayConfig(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<string> {
  if (flag !== undefined) return path.resolve(cwd, flag)
  const found = await findDefaultRelayConfig(env, cwd)
  if (found !== null) return found
  throw new PorchlightError('PL_ERR_CONFIG_READ', ['relay.yaml', `none found in ./relay.yaml or ${DEFAULT_CONFIG_DIR}/relay.yaml; pass -c FILE (or set PORCHLIGHT_RELAY_CONFIG), or create one with \`porchlight-relay init\``])
}
