import path from 'node:path'
import { loadRelayConfig } from '@porchlight/shared/config'
import { PorchlightError } from '@porchlight/shared/errors'

/** `--pki DIR` wins; else relay.yaml's `pki:`; else ./pki. */
export async function resolvePkiDir(o: { pki?: string; config?: string }): Promise<string> {
  if (o.pki) return path.resolve(o.pki)
  if (o.config) {
    const { config } = await loadRelayConfig(o.config)
    if (!config.pki) throw new PorchlightError('PL_ERR_USAGE', [`${o.config} has no pki: directory; pass --pki DIR`])
    return config.pki
  }
  return path.resolve('pki')
}
