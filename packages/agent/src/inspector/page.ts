/**
 * The inspector page: one HTML document, one script, one stylesheet, no framework and no build
 * step. They live in this module (not as files beside it) so the npm package and the single
 * executable carry them without an asset loader. Everything captured is visitor-controlled, so
 * the script only ever sets textContent, never HTML, and the page's CSP allows no inline script.
 */

/** The page, with the per-process token state-changing calls must send back in a header. */
export function inspectorHtml(token: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="porchlight-token" content="${token}">
<title>Porchlight inspector</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/inspector.css">
<script src="/inspector.js" defer></script>
</head>
<body>
<header>
  <h1>Porchlight inspector</h1>
  <span id="link" class="pill">…</span>
  <span id="live" class="pill">connecting</span>
  <span id="tunnels"></span>
</header>
<nav id="filters">
  <label>Tunnel <select id="f-tunnel"><option value="">all</option></select></label>
  <label>Status <select id="f-status">
    <option value="">all</option><option value="2xx">2xx</option><option value="3xx">3xx</option>
    <option value="4xx">4xx</option><option value="5xx">5xx</option><option value="error">errors</option>
  </select></label>
  <label>Search <input id="f-text" type="search" placeholder="method, path or host"></label>
  <span id="count"></span>
  <button id="clear" type="button">Clear</button>
</nav>
<main>
  <section id="list-pane">
    <table id="list">
      <thead><tr><th>Time</th><th>Tunnel</th><th>Method</th><th>Path</th><th>Status</th><th>Duration</th><th>Size</th></tr></thead>
      <tbody></tbody>
    </table>
    <p id="empty">No requests yet. Requests through your HTTP tunnels appear here as they happen.</p>
  </section>
  <section id="detail" hidden></section>
</main>
</body>
</html>
`
}

export const INSPECTOR_CSS = String.raw`
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 system-ui, sans-serif; color: #1d2430; background: #f6f7f9; }
header { display: flex; gap: 12px; align-items: center; padding: 8px 16px; background: #1d2430; color: #fff; flex-wrap: wrap; }
header h1 { font-size: 15px; margin: 0 12px 0 0; }
.pill { padding: 1px 8px; border-radius: 10px; background: #48526a; font-size: 12px; }
.pill.ok { background: #1f7a4d; } .pill.bad { background: #a33; }
#tunnels a { color: #9fd0ff; margin-right: 10px; }
nav { display: flex; gap: 14px; align-items: center; padding: 8px 16px; border-bottom: 1px solid #d8dce3; background: #fff; flex-wrap: wrap; }
nav #count { color: #667; margin-left: auto; }
main { display: grid; grid-template-columns: minmax(380px, 1fr) minmax(420px, 1.3fr); height: calc(100vh - 90px); }
#list-pane { overflow: auto; border-right: 1px solid #d8dce3; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 8px; white-space: nowrap; }
thead th { position: sticky; top: 0; background: #eef0f4; font-weight: 600; }
tbody tr { cursor: pointer; border-bottom: 1px solid #eceef2; }
tbody tr:hover { background: #eef4ff; } tbody tr.sel { background: #dbe8ff; }
td.path { max-width: 320px; overflow: hidden; text-overflow: ellipsis; font-family: ui-monospace, monospace; }
td.status { font-weight: 600; }
.s2 { color: #1f7a4d; } .s3 { color: #2a5db0; } .s4 { color: #b36b00; } .s5, .serr { color: #b3261e; } .spend { color: #889; }
tr.replay td.method::after { content: " ↻"; color: #2a5db0; }
#empty { color: #667; padding: 16px; }
#detail { overflow: auto; padding: 12px 16px; background: #fff; }
#detail h2 { font-size: 14px; margin: 0 0 8px; font-family: ui-monospace, monospace; word-break: break-all; }
#detail h3 { font-size: 13px; margin: 14px 0 4px; }
.kv { border-collapse: collapse; font-family: ui-monospace, monospace; font-size: 12px; }
.kv td { padding: 1px 8px 1px 0; white-space: pre-wrap; word-break: break-all; vertical-align: top; }
.kv td:first-child { color: #556; font-weight: 600; white-space: nowrap; }
pre.body { background: #f3f4f7; padding: 8px; max-height: 360px; overflow: auto; white-space: pre-wrap; word-break: break-all; font-size: 12px; margin: 4px 0; }
img.body { max-width: 100%; max-height: 360px; border: 1px solid #d8dce3; }
.note { color: #667; font-size: 12px; }
.compare { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.compare > div { min-width: 0; border: 1px solid #d8dce3; border-radius: 4px; padding: 8px; }
#replay-form { display: grid; grid-template-columns: 90px 1fr; gap: 6px 8px; align-items: start; margin-top: 6px; }
#replay-form textarea, #replay-form input { font-family: ui-monospace, monospace; font-size: 12px; width: 100%; }
#replay-form textarea { min-height: 80px; }
.buttons { display: flex; gap: 8px; grid-column: 2; }
button { font: inherit; padding: 3px 10px; cursor: pointer; }
`

export const INSPECTOR_JS = String.raw`'use strict';
(function () {
  var token = document.querySelector('meta[name="porchlight-token"]').getAttribute('content');
  var rows = new Map();
  var selected = null;
  var current = null;
  var tunnels = new Set();
  var pending = false;
  var $ = function (id) { return document.getElementById(id); };
  var tbody = document.querySelector('#list tbody');

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === 'text') node.textContent = attrs[k];
      else if (k === 'class') node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function api(method, path, body) {
    var init = { method: method, headers: { 'accept': 'application/json' } };
    if (method !== 'GET') init.headers['x-porchlight-token'] = token;
    if (body !== undefined) { init.headers['content-type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (res) {
      return res.json().then(function (data) {
        if (!res.ok) throw new Error((data && data.error && data.error.message) || ('HTTP ' + res.status));
        return data;
      });
    });
  }

  function statusClass(s) {
    if (s.state === 'failed' && !s.status) return 'serr';
    if (s.state === 'pending' && !s.status) return 'spend';
    return 's' + String(s.status).charAt(0);
  }
  function statusText(s) {
    if (s.status) return String(s.status);
    if (s.state === 'pending') return '…';
    return s.error ? s.error.code.replace('PL_ERR_', '') : 'error';
  }
  function size(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }
  function ms(s) { return s.durationMs === null ? '' : s.durationMs + ' ms'; }

  function matches(s) {
    var t = $('f-tunnel').value, st = $('f-status').value, q = $('f-text').value.trim().toLowerCase();
    if (t && s.tunnel !== t) return false;
    if (st === 'error' && !(s.state === 'failed')) return false;
    if (st && st !== 'error' && String(s.status).charAt(0) + 'xx' !== st) return false;
    if (q && (s.method + ' ' + s.path + ' ' + s.host).toLowerCase().indexOf(q) === -1) return false;
    return true;
  }

  function render() {
    pending = false;
    var list = Array.from(rows.values()).sort(function (a, b) { return Number(b.id) - Number(a.id); });
    var shown = list.filter(matches);
    var frag = document.createDocumentFragment();
    shown.forEach(function (s) {
      var tr = el('tr', { 'data-id': s.id, 'class': 'row' + (s.replayOf ? ' replay' : '') + (s.id === selected ? ' sel' : '') }, [
        el('td', { text: new Date(s.startedAt).toLocaleTimeString() }),
        el('td', { 'class': 'tunnel', text: s.tunnel }),
        el('td', { 'class': 'method', text: s.method }),
        el('td', { 'class': 'path', text: s.path, title: s.host + s.path }),
        el('td', { 'class': 'status ' + statusClass(s), text: statusText(s) }),
        el('td', { 'class': 'duration', text: ms(s) }),
        el('td', { 'class': 'size', text: size(s.responseBytes) })
      ]);
      tr.addEventListener('click', function () { select(s.id); });
      frag.appendChild(tr);
    });
    tbody.replaceChildren(frag);
    $('empty').hidden = list.length > 0;
    $('count').textContent = shown.length === list.length ? list.length + ' requests' : shown.length + ' of ' + list.length + ' requests';
  }
  function schedule() { if (!pending) { pending = true; requestAnimationFrame(render); } }

  function upsert(s) {
    rows.set(s.id, s);
    if (!tunnels.has(s.tunnel)) {
      tunnels.add(s.tunnel);
      $('f-tunnel').appendChild(el('option', { value: s.tunnel, text: s.tunnel }));
    }
    schedule();
  }

  function header(headers, name) {
    for (var i = 0; i < headers.length; i++) if (headers[i][0].toLowerCase() === name) return headers[i][1];
    return '';
  }
  function decode(b64) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes;
  }
  function hexdump(bytes) {
    var lines = [];
    for (var off = 0; off < bytes.length; off += 16) {
      var hex = '', ascii = '';
      for (var i = off; i < off + 16; i++) {
        if (i < bytes.length) {
          hex += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16) + ' ';
          ascii += bytes[i] >= 32 && bytes[i] < 127 ? String.fromCharCode(bytes[i]) : '.';
        } else hex += '   ';
      }
      lines.push(('0000000' + off.toString(16)).slice(-8) + '  ' + hex + ' ' + ascii);
    }
    return lines.join('\n');
  }
  var IMAGE = /^image\/(png|jpeg|gif|webp|avif|bmp|x-icon|vnd\.microsoft\.icon|svg\+xml)$/;

  function bodyView(body, headers, id) {
    var box = el('div', { id: id });
    if (body.bytes === 0) { box.appendChild(el('p', { 'class': 'note', text: 'no body' })); return box; }
    var type = header(headers, 'content-type').split(';')[0].trim().toLowerCase();
    var bytes = decode(body.base64);
    var note = body.truncated ? size(body.bytes) + ', first ' + size(bytes.length) + ' shown' : size(body.bytes);
    if (IMAGE.test(type) && !body.truncated) {
      box.appendChild(el('img', { 'class': 'body', src: 'data:' + type + ';base64,' + body.base64, alt: 'image body' }));
    } else {
      var text = null;
      try { text = new TextDecoder('utf-8', { fatal: !body.truncated }).decode(bytes); } catch (e) { text = null; }
      if (text !== null && /[\u0000-\u0008\u000e-\u001f]/.test(text)) text = null;
      if (text !== null && (type.indexOf('json') !== -1 || /^\s*[\[{]/.test(text))) {
        try { text = JSON.stringify(JSON.parse(text), null, 2); note += ', JSON'; } catch (e) { /* shown as text */ }
      }
      if (text === null) note += ', binary (hex)';
      box.appendChild(el('pre', { 'class': 'body', text: text === null ? hexdump(bytes) : text }));
    }
    box.appendChild(el('p', { 'class': 'note', text: note }));
    return box;
  }

  function headerTable(headers, id) {
    return el('table', { 'class': 'kv', id: id }, [el('tbody', null, headers.map(function (h) {
      return el('tr', null, [el('td', { text: h[0] }), el('td', { text: h[1] })]);
    }))]);
  }

  function responseView(d, prefix) {
    var box = el('div', { 'class': prefix + '-response' });
    if (d.response === null) {
      box.appendChild(el('p', { 'class': 'status ' + statusClass(d), text: d.state === 'pending' ? 'waiting for the local server…' : 'no response: ' + (d.error ? d.error.code + ': ' + d.error.message : 'error') }));
      return box;
    }
    box.appendChild(el('p', { 'class': 'status ' + statusClass(d), id: prefix + '-status', text: d.status + ' ' + (d.response.statusMessage || '') + (d.durationMs !== null ? '  (' + d.durationMs + ' ms)' : '') }));
    box.appendChild(el('h3', { text: 'Headers' }));
    box.appendChild(headerTable(d.response.headers, prefix + '-res-headers'));
    box.appendChild(el('h3', { text: 'Body' }));
    box.appendChild(bodyView(d.response.body, d.response.headers, prefix + '-res-body'));
    return box;
  }

  function bodyText(body) {
    if (body.bytes === 0) return '';
    try { return new TextDecoder('utf-8', { fatal: true }).decode(decode(body.base64)); } catch (e) { return null; }
  }

  function showDetail(d) {
    current = d;
    var pane = $('detail');
    pane.hidden = false;
    var req = d.request;
    var form = el('div', { id: 'replay-form' }, [
      el('label', { 'for': 'replay-method', text: 'Method' }), el('input', { id: 'replay-method', value: d.method }),
      el('label', { 'for': 'replay-path', text: 'Path' }), el('input', { id: 'replay-path', value: d.path }),
      el('label', { 'for': 'replay-headers', text: 'Headers' }), el('textarea', { id: 'replay-headers' }),
      el('label', { 'for': 'replay-body', text: 'Body' }), el('textarea', { id: 'replay-body' }),
      el('div', { 'class': 'buttons' }, [
        el('button', { id: 'replay-send', type: 'button', text: 'Replay' }),
        el('button', { id: 'replay-send-edited', type: 'button', text: 'Replay edited' })
      ])
    ]);
    var result = el('div', { id: 'replay-result' });
    pane.replaceChildren(
      el('h2', { text: d.method + ' ' + d.host + d.path }),
      el('p', { 'class': 'note', text: 'tunnel ' + d.tunnel + ', ' + new Date(d.startedAt).toLocaleString() + (d.replayOf ? ', replay of #' + d.replayOf : '') }),
      el('h3', { text: 'Request headers' }), headerTable(req.headers, 'req-headers'),
      el('h3', { text: 'Request body' }), bodyView(req.body, req.headers, 'req-body'),
      el('h3', { text: 'Response' }), responseView(d, 'orig'),
      el('h3', { text: 'Replay' }),
      el('p', { 'class': 'note', text: 'Sends this request again to the local server (not through the relay). Edit and use "Replay edited" to change it.' }),
      form, result
    );
    $('replay-headers').value = req.headers.map(function (h) { return h[0] + ': ' + h[1]; }).join('\n');
    var text = bodyText(req.body);
    $('replay-body').value = text === null ? '' : text;
    if (text === null || req.body.truncated) $('replay-body').placeholder = 'binary or cut body: replay as captured, or type a new one';
    $('replay-send').addEventListener('click', function () { replay(d, {}); });
    $('replay-send-edited').addEventListener('click', function () {
      var headers = $('replay-headers').value.split('\n').map(function (l) { return l.trim(); }).filter(Boolean).map(function (l) {
        var i = l.indexOf(':');
        return i > 0 ? [l.slice(0, i).trim(), l.slice(i + 1).trim()] : [l, ''];
      });
      replay(d, { method: $('replay-method').value.trim(), path: $('replay-path').value.trim(), headers: headers, body: $('replay-body').value });
    });
  }

  function replay(d, edits) {
    var result = $('replay-result');
    result.replaceChildren(el('p', { 'class': 'note', text: 'replaying…' }));
    api('POST', '/api/requests/' + encodeURIComponent(d.id) + '/replay', edits).then(function (r) {
      result.replaceChildren(el('div', { 'class': 'compare', id: 'compare' }, [
        el('div', null, [el('h3', { text: 'Original #' + d.id }), responseView(d, 'orig-cmp')]),
        el('div', null, [el('h3', { text: 'Replay #' + r.id + ' ' + r.method + ' ' + r.path }), responseView(r, 'replay')])
      ]));
    }, function (err) {
      result.replaceChildren(el('p', { 'class': 'status serr', id: 'replay-error', text: 'replay failed: ' + err.message }));
    });
  }

  function select(id) {
    selected = id;
    schedule();
    api('GET', '/api/requests/' + encodeURIComponent(id)).then(function (d) {
      if (selected === id) showDetail(d);
    }, function (err) {
      $('detail').hidden = false;
      $('detail').replaceChildren(el('p', { 'class': 'note', text: err.message }));
    });
  }

  function refreshStatus() {
    api('GET', '/api/status').then(function (s) {
      var link = $('link');
      link.textContent = s.connected ? 'connected to ' + s.relay : s.state;
      link.className = 'pill ' + (s.connected ? 'ok' : 'bad');
      $('tunnels').replaceChildren.apply($('tunnels'), s.tunnels.filter(function (t) { return t.url; }).map(function (t) {
        return el('a', { href: t.url, target: '_blank', rel: 'noreferrer noopener', text: t.url });
      }));
    }, function () { $('link').textContent = 'agent unreachable'; $('link').className = 'pill bad'; });
  }

  ['f-tunnel', 'f-status', 'f-text'].forEach(function (id) { $(id).addEventListener('input', schedule); });
  $('clear').addEventListener('click', function () {
    api('DELETE', '/api/requests').then(function () { rows.clear(); schedule(); });
  });

  var events = new EventSource('/api/events');
  events.addEventListener('open', function () { $('live').textContent = 'live'; $('live').className = 'pill ok'; });
  events.addEventListener('error', function () { $('live').textContent = 'reconnecting'; $('live').className = 'pill bad'; });
  events.addEventListener('request', function (e) {
    var s = JSON.parse(e.data);
    upsert(s);
    if (current !== null && current.id === s.id && current.state === 'pending' && s.state !== 'pending') select(s.id);
  });
  events.addEventListener('clear', function () { rows.clear(); schedule(); });
  api('GET', '/api/requests').then(function (data) { data.requests.forEach(upsert); schedule(); }, function (err) {
    $('empty').textContent = err.message;
  });
  refreshStatus();
  setInterval(refreshStatus, 5000);
})();
`
