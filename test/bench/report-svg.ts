// docs/benchmarks.svg, drawn by hand: throughput of each path as a multiple of direct (grouped
// bars, one group per workload), and CPU µs per GET 1 KiB at the fixed rate (one bar per path).
import { LABEL, type BenchResult, type Column } from './result.js'

const COLOR: Record<Column, string> = {
  direct: '#9e9e9e', porchlight: '#e65100', sshN: '#1565c0', sshTT: '#64b5f6', floor: '#2e7d32', oldFloor: '#a5d6a7',
}

const GROUPS: Array<[string, string]> = [
  ['GET 1 KiB, 50 conns', 'rps50VsDirect'],
  ['GET 10 MB', 'bulkMBsVsDirect'],
  ['POST 1 MiB echo', 'postMBsVsDirect'],
  ['new conn / request', 'newConnRpsVsDirect'],
  ['WebSocket echo', 'wsEchoPerSVsDirect'],
  ['TCP upload', 'tcpUpMBsVsDirect'],
  ['TCP download', 'tcpDownMBsVsDirect'],
]

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`
}

export function renderSvg(r: BenchResult): string {
  const W = 960
  const cols = r.columns.filter((c) => c !== 'direct')
  const value = (c: Column, key: string): number => r.medians[c]?.[key] ?? NaN
  const groups = GROUPS.filter(([, key]) => cols.some((c) => Number.isFinite(value(c, key))))
  const out: string[] = []
  // Panel 1: × direct.
  const top = 70
  const h1 = 260
  const left = 60
  const plotW = W - left - 20
  const maxRatio = Math.max(1.1, ...groups.flatMap(([, key]) => cols.map((c) => value(c, key)).filter(Number.isFinite)))
  const y = (v: number): number => top + h1 - (Math.min(v, maxRatio) / maxRatio) * h1
  out.push(text(left, top - 40, `Throughput as a multiple of direct (median of ${String((r.settings as { rounds: number }).rounds)} rounds; 1.0 = direct)`, 'font-size="15" font-weight="bold"'))
  for (let t = 0; t <= maxRatio + 1e-9; t += maxRatio > 2 ? 0.5 : 0.25) {
    out.push(`<line x1="${left}" x2="${left + plotW}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="${Math.abs(t - 1) < 1e-9 ? '#000' : '#ddd'}" stroke-width="${Math.abs(t - 1) < 1e-9 ? 1.5 : 1}"/>`)
    out.push(text(left - 8, y(t) + 4, `${t.toFixed(2)}×`, 'font-size="11" text-anchor="end"'))
  }
  const groupW = groups.length > 0 ? plotW / groups.length : plotW
  const barW = Math.min(22, (groupW - 16) / Math.max(1, cols.length))
  groups.forEach(([name, key], g) => {
    const gx = left + g * groupW + (groupW - barW * cols.length) / 2
    cols.forEach((c, i) => {
      const v = value(c, key)
      if (!Number.isFinite(v)) return
      const x = gx + i * barW
      out.push(`<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(top + h1 - y(v)).toFixed(1)}" fill="${COLOR[c]}"><title>${esc(`${LABEL[c]}, ${name}: ${v.toFixed(2)}× direct`)}</title></rect>`)
      out.push(text(x + (barW - 2) / 2, y(v) - 3, v.toFixed(2), 'font-size="9" text-anchor="middle"'))
    })
    out.push(text(left + g * groupW + groupW / 2, top + h1 + 16, name, 'font-size="12" text-anchor="middle"'))
  })
  // Legend.
  cols.forEach((c, i) => {
    const lx = left + i * 150
    out.push(`<rect x="${lx}" y="${top - 28}" width="12" height="12" fill="${COLOR[c]}"/>`)
    out.push(text(lx + 16, top - 18, LABEL[c], 'font-size="12"'))
  })
  // Panel 2: CPU µs per request.
  const top2 = top + h1 + 70
  const cpuCols = cols.filter((c) => Number.isFinite(value(c, 'cpuUsPerRequest')))
  const maxCpu = Math.max(1, ...cpuCols.map((c) => value(c, 'cpuUsPerRequest')))
  const rate = (r.settings as { fixedRate?: { rate: number } }).fixedRate?.rate ?? 0
  out.push(text(left, top2 - 12, `Relay + agent (or sshd + ssh) CPU µs per GET 1 KiB at ${rate} req/s (less is better)`, 'font-size="15" font-weight="bold"'))
  const barLeft = 230
  const barMax = W - barLeft - 90
  cpuCols.forEach((c, i) => {
    const v = value(c, 'cpuUsPerRequest')
    const by = top2 + i * 26
    out.push(text(barLeft - 8, by + 14, LABEL[c], 'font-size="12" text-anchor="end"'))
    out.push(`<rect x="${barLeft}" y="${by}" width="${((v / maxCpu) * barMax).toFixed(1)}" height="18" fill="${COLOR[c]}"/>`)
    out.push(text(barLeft + (v / maxCpu) * barMax + 6, by + 14, `${v.toFixed(1)} µs`, 'font-size="12"'))
  })
  const H = top2 + Math.max(1, cpuCols.length) * 26 + 30
  out.push(text(left, H - 10, `${r.command}, ${r.date.slice(0, 16).replace('T', ' ')} UTC, ${r.machine.nproc} cores${r.quick ? ' (quick mode)' : ''}`, 'font-size="11" fill="#555"'))
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    ...out,
    '</svg>',
    '',
  ].join('\n')
}
