/**
 * The relay dashboard: a login page, one page of live state, its script and its stylesheet. No
 * framework and no inline script (the CSP forbids it); the script renders everything with
 * textContent, so nothing an agent or visitor chose (host names, URLs) is ever parsed as HTML.
 */

const HEAD = '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Porchlight relay</title><link rel="stylesheet" href="/dashboard.css">'

export function loginPage(error?: string): string {
  return `${HEAD}</head><body class="login"><main>
<h1>Porchlight relay</h1>
<form method="post" action="/login" id="login">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus size="48">
<button type="submit">Log in</button>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
</form>
<p class="hint">The token printed by <code>porchlight-relay init</code>; relay.yaml keeps only its SHA-256.</p>
</main></body></html>
`
}

/** The dashboard; `csrf` is the login's token, which the script sends on every change. */
export function dashboardPage(csrf: string): string {
  return `${HEAD}<meta name="porchlight-csrf" content="${escapeHtml(csrf)}"></head><body>
<header><h1>Porchlight relay</h1><span id="updated" aria-live="polite"></span><button id="logout" type="button">Log out</button></header>
<p id="problem" class="error" role="alert" hidden></p>
<section><h2>Agents</h2>
<table id="agents"><thead><tr><th>Agent</th><th>Session</th><th>Connected</th><th>Streams</th><th>Tunnels</th><th></th></tr></thead><tbody></tbody></table>
<p class="empty" id="agents-empty" hidden>No agent is connected.</p></section>
<section><h2>Traffic per host, last hour</h2><div id="traffic"></div><ul id="traffic-legend" class="legend"></ul></section>
<section><h2>Share links</h2>
<table id="links"><thead><tr><th>Id</th><th>Host</th><th>Note</th><th>Expires</th><th>State</th><th></th></tr></thead><tbody></tbody></table>
<p class="empty" id="links-empty" hidden>No share links.</p></section>
<section><h2>Certificates</h2>
<table id="certs"><thead><tr><th>Name</th><th>Serial</th><th>Expires</th><th>State</th><th></th></tr></thead><tbody></tbody></table>
<p class="empty" id="certs-empty" hidden>No certificates issued.</p></section>
<section><h2>Access log</h2>
<table id="log"><thead><tr><th>Time</th><th>Host</th><th>Method</th><th>URL</th><th>Status</th><th>Bytes in/out</th><th>ms</th></tr></thead><tbody></tbody></table></section>
<script src="/dashboard.js"></script>
</body></html>
`
}

export const DASHBOARD_CSS = `body{font:14px system-ui,sans-serif;margin:0;color:#1d2327;background:#f6f7f7}
header{display:flex;gap:1em;align-items:center;padding:.6em 1.5em;background:#1d2327;color:#fff}
header h1{font-size:1.2em;margin:0;flex:1}
main,section{margin:1em 1.5em;padding:.8em 1em;background:#fff;border:1px solid #dcdcde;border-radius:6px}
section h2{font-size:1em;margin:.2em 0 .6em}
table{border-collapse:collapse;width:100%}
td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top;font-variant-numeric:tabular-nums}
th{font-weight:600;color:#50575e}
td.url{max-width:32em;overflow-wrap:anywhere}
button{cursor:pointer}
.error{color:#b32d2e}.empty,.hint{color:#646970}
.revoked{color:#b32d2e}.ok{color:#008a20}
.login main{max-width:28em;margin:10vh auto}
.login label{display:block;margin-bottom:.3em}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:1.2em}
.legend span{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}
svg text{font-size:11px;fill:#646970}
`

export const DASHBOARD_JS = `'use strict'
const csrf = document.querySelector('meta[name="porchlight-csrf"]').content
const COLORS = ['#2271b1', '#d63638', '#00a32a', '#dba617', '#8c5fc7', '#3582c4', '#e65054', '#68de7c']
const SVG = 'http://www.w3.org/2000/svg'

async function api(path, options) {
  const init = Object.assign({ credentials: 'same-origin', headers: {} }, options || {})
  if (init.method && init.method !== 'GET') init.headers = Object.assign({ 'x-porchlight-csrf': csrf, 'content-type': 'application/json' }, init.headers)
  const res = await fetch(path, init)
  if (res.status === 401) { location.reload(); throw new Error('logged out') }
  if (!res.ok) throw new Error(path + ': HTTP ' + res.status)
  return res.status === 204 ? null : res.json()
}

function cell(row, text, cls) {
  const td = row.insertCell()
  td.textContent = text === undefined || text === null ? '' : String(text)
  if (cls) td.className = cls
  return td
}

function button(row, label, cls, onClick) {
  const b = document.createElement('button')
  b.type = 'button'
  b.textContent = label
  b.className = cls
  b.onclick = () => { b.disabled = true; onClick().then(refresh, showProblem).finally(() => { b.disabled = false }) }
  row.insertCell().appendChild(b)
}

function fill(id, items, render) {
  const tbody = document.querySelector('#' + id + ' tbody')
  tbody.textContent = ''
  for (const item of items) render(tbody.insertRow(), item)
  const empty = document.getElementById(id + '-empty')
  if (empty) empty.hidden = items.length > 0
}

function time(ms) { return new Date(ms).toLocaleTimeString() }
function showProblem(err) { const p = document.getElementById('problem'); p.textContent = String(err.message || err); p.hidden = false }

function renderAgents(agents) {
  fill('agents', agents, (row, a) => {
    row.dataset.agent = a.name
    row.dataset.session = a.session
    cell(row, a.name)
    cell(row, a.instance === 'default' ? a.session : a.session + ' (' + a.instance + ')')
    cell(row, new Date(a.connectedAt).toLocaleString())
    cell(row, a.streams)
    cell(row, a.tunnels.map((t) => t.ok ? t.url : t.id + ' (' + t.code + ')').join('\\n'), 'url')
    button(row, 'Disconnect', 'disconnect', () => api('/api/agents/' + encodeURIComponent(a.name) + '/disconnect', { method: 'POST', body: JSON.stringify({ session: a.session }) }))
  })
}

function renderLinks(links) {
  fill('links', links, (row, l) => {
    row.dataset.link = l.id
    cell(row, l.id)
    cell(row, l.host)
    cell(row, l.note)
    cell(row, new Date(l.expiresAt).toLocaleString())
    const expired = l.expiresAt <= Date.now()
    cell(row, l.revoked ? 'revoked' : expired ? 'expired' : 'active', l.revoked ? 'revoked' : 'ok')
    if (l.revoked || expired) row.insertCell()
    else button(row, 'Revoke', 'revoke-link', () => confirm('Revoke share link ' + l.id + '?') ? api('/api/links/' + encodeURIComponent(l.id) + '/revoke', { method: 'POST', body: '{}' }) : Promise.resolve())
  })
}

function renderCerts(certs) {
  fill('certs', certs.certs, (row, c) => {
    row.dataset.serial = c.serial
    cell(row, c.name)
    cell(row, c.serial)
    cell(row, c.notAfter.slice(0, 10))
    cell(row, c.revoked ? 'revoked' : 'valid', c.revoked ? 'revoked' : 'ok')
    if (c.revoked) row.insertCell()
    else button(row, 'Revoke', 'revoke-cert', () => confirm('Revoke the certificate of ' + c.name + ' (' + c.serial + ')? A connected agent using it is cut off.') ? api('/api/certs/' + encodeURIComponent(c.serial) + '/revoke', { method: 'POST', body: '{}' }) : Promise.resolve())
  })
  if (!certs.pki) document.getElementById('certs-empty').textContent = 'No pki: directory is configured.'
}

function renderLog(entries) {
  fill('log', entries, (row, e) => {
    cell(row, time(e.time))
    cell(row, e.host || '-')
    cell(row, e.method)
    cell(row, e.url, 'url')
    cell(row, e.status, e.status >= 500 ? 'revoked' : '')
    cell(row, e.bytesIn + ' / ' + e.bytesOut)
    cell(row, e.ms)
  })
}

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name)
  for (const k in attrs) node.setAttribute(k, String(attrs[k]))
  if (text !== undefined) node.textContent = text
  return node
}

function renderTraffic(traffic) {
  const box = document.getElementById('traffic')
  const legend = document.getElementById('traffic-legend')
  const W = 1000, H = 180, L = 40, B = 20
  const hosts = traffic.hosts
    .map((h) => Object.assign({ total: h.requests.reduce((a, b) => a + b, 0) }, h))
    .sort((a, b) => b.total - a.total).slice(0, COLORS.length)
  const max = Math.max(1, ...hosts.map((h) => Math.max(...h.requests)))
  const svg = el('svg', { id: 'traffic-chart', viewBox: '0 0 ' + W + ' ' + H, width: '100%', role: 'img', 'aria-label': 'requests per minute per host' })
  svg.appendChild(el('line', { x1: L, y1: H - B, x2: W, y2: H - B, stroke: '#ccc' }))
  svg.appendChild(el('line', { x1: L, y1: 4, x2: L, y2: H - B, stroke: '#ccc' }))
  svg.appendChild(el('text', { x: 2, y: 14 }, String(max) + '/min'))
  svg.appendChild(el('text', { x: L, y: H - 4 }, '-' + traffic.minutes + ' min'))
  svg.appendChild(el('text', { x: W - 24, y: H - 4 }, 'now'))
  const step = (W - L) / Math.max(1, traffic.minutes - 1)
  legend.textContent = ''
  hosts.forEach((h, i) => {
    const points = h.requests.map((v, j) => (L + j * step).toFixed(1) + ',' + (H - B - (v / max) * (H - B - 8)).toFixed(1)).join(' ')
    const line = el('polyline', { points, fill: 'none', stroke: COLORS[i], 'stroke-width': 2, 'data-host': h.host })
    line.appendChild(el('title', {}, h.host + ': ' + h.total + ' requests'))
    svg.appendChild(line)
    const li = document.createElement('li')
    li.dataset.host = h.host
    const swatch = document.createElement('span')
    swatch.setAttribute('aria-hidden', 'true')
    swatch.style.background = COLORS[i]
    const errors = h.errors.reduce((a, b) => a + b, 0)
    const bytes = h.bytes.reduce((a, b) => a + b, 0)
    li.append(swatch, h.host + ': ' + h.total + ' requests, ' + errors + ' errors, ' + bytes + ' bytes')
    legend.appendChild(li)
  })
  box.textContent = ''
  box.appendChild(svg)
}

let timer = null
async function refresh() {
  clearTimeout(timer)
  try {
    const [agents, links, certs, traffic, log] = await Promise.all([api('/api/agents'), api('/api/links'), api('/api/certs'), api('/api/traffic'), api('/api/access-log')])
    renderAgents(agents)
    renderLinks(links)
    renderCerts(certs)
    renderTraffic(traffic)
    renderLog(log)
    document.getElementById('problem').hidden = true
    document.getElementById('updated').textContent = 'updated ' + time(Date.now())
  } catch (err) {
    showProblem(err)
  }
  timer = setTimeout(refresh, 2000)
}

document.getElementById('logout').onclick = async () => {
  await api('/logout', { method: 'POST', body: '{}' })
  location.href = '/'
}
refresh()
`

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}
