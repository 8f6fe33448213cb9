/**
 * "Did you mean" for unknown config keys. A known key is suggested when the typo is a small edit
 * away ("tcp_port" -> "tcp_ports"), differs only in case, has the same words with other endings
 * ("trusted_proxies" -> "trust_proxy"), or when one is the other plus a suffix
 * ("listen_adress" -> "listen", "token" -> "token_sha256").
 */
const MAX_COMPARED_CHARS = 64

export function suggestKey(key: string, known: readonly string[]): string | undefined {
  const typed = key.toLowerCase().slice(0, MAX_COMPARED_CHARS)
  let best: string | undefined
  let bestScore = Number.POSITIVE_INFINITY
  for (const candidate of known) {
    const score = closeness(typed, candidate.toLowerCase())
    if (score < bestScore) {
      best = candidate
      bestScore = score
    }
  }
  return best
}

/** Lower is closer; Infinity means "not a plausible suggestion". */
function closeness(typed: string, known: string): number {
  if (typed === known) return 0
  const distance = editDistance(typed, known)
  if (distance <= allowedEdits(Math.max(typed.length, known.length))) return distance
  if (stems(typed) === stems(known)) return 5
  // A known key with something appended by mistake, or a known key cut short.
  if (typed.startsWith(known) && /^[_.\- ]/.test(typed.slice(known.length))) return 10
  if (known.startsWith(typed) && typed.length >= 3) return 11
  return Number.POSITIVE_INFINITY
}

function allowedEdits(length: number): number {
  if (length <= 4) return 1
  if (length <= 9) return 2
  return 3
}

/** "trusted_proxies" and "trust_proxy" both give "trus_prox". */
function stems(key: string): string {
  return key.split(/[_\-.]/).map((word) => word.slice(0, 4)).join('_')
}

/** Levenshtein distance with two rolling rows. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost)
    }
    prev = row
  }
  return prev[b.length] ?? 0
}
