import { constants } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import { isIP } from 'node:net'
import { checkServerIdentity, createSecureContext, type PeerCertificate, type TLSSocket } from 'node:tls'
import { PorchlightError } from '@porchlight/shared/errors'
import { readPem } from '../agents/tls.js'

/** cluster.peer_tls read into memory at start: this relay's certificate and key, the members' CA. */
export interface PeerTls {
  cert: Buffer
  key: Buffer
  ca: Buffer
}

/** Reads and checks the files (PEM labels, key matching certificate): PL_ERR_TLS_FILE naming the file. */
export function loadPeerTls(files: { cert: string; key: string; ca: string }): PeerTls {
  const tls = {
    cert: Buffer.from(readPem(files.cert, ['CERTIFICATE'])),
    key: Buffer.from(readPem(files.key, ['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY'])),
    ca: Buffer.from(readPem(files.ca, ['CERTIFICATE'])),
  }
  try {
    createSecureContext({ cert: tls.cert, key: tls.key, ca: tls.ca })
  } catch (err) {
    const message = (err as Error).message
    throw new PorchlightError('PL_ERR_TLS_FILE', [/key|mismatch/i.test(message) ? files.key : files.cert, message], { cause: err })
  }
  return tls
}

/**
 * Options for the https peer listener. Every handshake is asked for a client certificate, but one
 * without (a load balancer's health check) is still accepted so it can read /readyz; the request
 * handler refuses anything else on a socket that did not present a certificate from `ca`.
 */
export function peerServerTlsOptions(t: PeerTls): https.ServerOptions {
  return {
    cert: t.cert,
    key: t.key,
    ca: t.ca,
    requestCert: true,
    rejectUnauthorized: false, // lint-allow: relay-decides (peerAuthenticated per request; only /readyz without one)
    minVersion: 'TLSv1.2',
    // No resumption (SECURITY rule 4): every connection presents and verifies its certificate.
    secureOptions: constants.SSL_OP_NO_TICKET,
  }
}

/** True when the socket is TLS and its client certificate verified against the members' CA. */
export function peerAuthenticated(socket: unknown): boolean {
  return (socket as Partial<TLSSocket>).authorized === true
}

/**
 * One request to a peer at `target` (its advertise.peer URL): plain http without peer_tls, else
 * https presenting this relay's certificate and verifying the peer's against the CA and the URL's
 * host. With peer_tls an http:// peer is refused rather than dialled in clear (a downgrade).
 */
export function requestPeer(target: URL, options: http.RequestOptions, tls: PeerTls | null): http.ClientRequest {
  const host = target.hostname.replace(/^\[|\]$/g, '')
  if (tls === null) return http.request({ ...options, host, port: Number(target.port === '' ? 80 : target.port) })
  if (target.protocol !== 'https:') throw new Error(`peer ${target.origin} is not https:// while cluster.peer_tls is set`)
  return https.request({
    ...options,
    host,
    port: Number(target.port === '' ? 443 : target.port),
    cert: tls.cert,
    key: tls.key,
    ca: tls.ca,
    rejectUnauthorized: true,
    // SNI carries names only ('' keeps Node from sending the forwarded request's Host instead).
    servername: isIP(host) === 0 ? host : '',
    // The peer's certificate must name the advertised host (a DNS or IP SAN), whatever Host says.
    checkServerIdentity: (_name: string, cert: PeerCertificate) => checkServerIdentity(host, cert),
    minVersion: 'TLSv1.2',
  })
}
