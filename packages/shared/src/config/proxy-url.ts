/**
 * An HTTP proxy for the agent's link to the relay (agent.yaml `proxy:`, or HTTPS_PROXY /
 * HTTP_PROXY): `http://host:port`, optionally with basic credentials (`http://user:pass@host:3128`).
 * A value without a scheme ("proxy.corp:3128", as many environments set it) means http://. The
 * agent tunnels through it with CONNECT, so TLS to the relay stays end to end; proxies spoken to
 * over TLS (https://) or SOCKS are not supported and say so.
 */
export function parseProxyUrl(text: string): URL {
  const trimmed = text.trim()
  if (trimmed === '') throw new Error('empty proxy URL')
  let url: URL
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`)
  } catch {
    throw new Error(`${JSON.stringify(redactProxyText(trimmed))} is not a URL (expected http://host:port)`)
  }
  if (url.protocol !== 'http:') throw new Error(`only http:// proxies are supported (the agent tunnels with CONNECT), got ${url.protocol}//`)
  if (url.hostname === '') throw new Error('missing host in the proxy URL')
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    throw new Error(`a proxy URL has no path, query or fragment: ${JSON.stringify(describeProxy(url))}`)
  }
  return url
}

/** host:port of a proxy URL, never its credentials: what logs and errors show. */
export function describeProxy(url: URL): string {
  return `${url.hostname.includes(':') && !url.hostname.startsWith('[') ? `[${url.hostname}]` : url.hostname}:${url.port === '' ? 80 : url.port}`
}

function redactProxyText(text: string): string {
  return text.replace(/\/\/[^/@]*@/, '//***@')
}
