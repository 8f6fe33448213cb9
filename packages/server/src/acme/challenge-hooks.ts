import tls from 'node:tls'
import type acme from 'acme-client'
import type { Logger } from '@porchlight/shared/log'
import { runDnsHook, type ChallengeAnswers } from './challenges.js'
import type { AcmeSharedState } from './shared-state.js'

type Challenge = { type: string; token: string }

export interface ChallengeHooksDeps {
  answers: ChallengeAnswers
  /** With `cluster:`: answers go to Redis too, for whichever member the CA's validation reaches. */
  shared: AcmeSharedState | null
  dnsHook: () => string | null
  /** acme-client's RFC 8737 certificate for a TLS-ALPN-01 challenge: [key, cert]. */
  alpnCertificate: (authz: acme.Authorization, keyAuthorization: string) => Promise<[Buffer, Buffer]>
  log: Logger
}

/**
 * acme-client's challengeCreateFn / challengeRemoveFn for an order: the answer is put where the
 * CA looks (this relay's listeners, and in a cluster Redis for the other members; or DNS through
 * `acme.dns_hook`) and taken away afterwards.
 */
export class ChallengeHooks {
  constructor(private readonly deps: ChallengeHooksDeps) {}

  async present(authz: acme.Authorization, challenge: Challenge, keyAuthorization: string): Promise<void> {
    const host = authz.identifier.value
    const { answers, shared } = this.deps
    if (challenge.type === 'http-01') {
      answers.addHttp(host, challenge.token, keyAuthorization)
      await shared?.putHttp(challenge.token, host, keyAuthorization)
    } else if (challenge.type === 'tls-alpn-01') {
      const [key, cert] = await this.deps.alpnCertificate(authz, keyAuthorization)
      answers.addAlpn(host, tls.createSecureContext({ key, cert }))
      await shared?.putAlpn(host, { key: key.toString(), cert: cert.toString() })
    } else if (challenge.type === 'dns-01') {
      const hook = this.deps.dnsHook()
      if (hook === null) throw new Error('dns-01 needs acme.dns_hook')
      await runDnsHook(hook, 'present', `_acme-challenge.${host}`, keyAuthorization)
    } else throw new Error(`unsupported challenge ${challenge.type}`)
    this.deps.log.debug({ host, challenge: challenge.type }, 'acme: challenge ready')
  }

  async cleanup(authz: acme.Authorization, challenge: Challenge, keyAuthorization: string): Promise<void> {
    const host = authz.identifier.value
    const { answers, shared } = this.deps
    if (challenge.type === 'http-01') {
      answers.removeHttp(challenge.token)
      await shared?.deleteHttp(challenge.token).catch(() => { /* expires by itself */ })
    } else if (challenge.type === 'tls-alpn-01') {
      answers.removeAlpn(host)
      await shared?.deleteAlpn(host).catch(() => { /* expires by itself */ })
    } else if (challenge.type === 'dns-01') {
      const hook = this.deps.dnsHook()
      if (hook !== null) {
        await runDnsHook(hook, 'cleanup', `_acme-challenge.${host}`, keyAuthorization).catch((err: unknown) => {
          this.deps.log.warn({ host, err: { message: (err as Error).message } }, 'acme: dns_hook cleanup failed')
        })
      }
    }
  }
}
