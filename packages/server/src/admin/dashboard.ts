/** A single static page; it asks for the admin token and renders GET /api/agents. */
export const DASHBOARD_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>Porchlight relay</title>
<style>body{font:15px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}</style>
</head><body><h1>Porchlight relay</h1>
<form id="f"><input id="t" type="password" placeholder="admin token" size="48"> <button>Show agents</button></form>
<table id="agents"><thead><tr><th>Agent</th><th>Connected</th><th>Streams</th><th>Tunnels</th></tr></thead><tbody></tbody></table>
<script>
const tbody = document.querySelector('#agents tbody')
document.getElementById('f').onsubmit = async (e) => {
  e.preventDefault()
  const res = await fetch('/api/agents', { headers: { authorization: 'Bearer ' + document.getElementById('t').value } })
  tbody.textContent = ''
  if (!res.ok) { tbody.insertRow().insertCell().textContent = 'HTTP ' + res.status; return }
  for (const a of await res.json()) {
    const row = tbody.insertRow()
    for (const v of [a.name, a.connectedAt, a.streams, a.tunnels.map((t) => t.ok ? t.url : t.id + ' (' + t.code + ')').join(', ')]) row.insertCell().textContent = String(v)
  }
}
</script></body></html>
`
