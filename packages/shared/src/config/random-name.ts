import { randomBytes, randomInt } from 'node:crypto'

/** Short, DNS-safe words for quick-share names ("brave-otter-3f9a"); all lower-case a-z. */
const ADJECTIVES = [
  'amber', 'bold', 'brave', 'bright', 'calm', 'clever', 'cosy', 'crisp', 'eager', 'fair', 'gentle', 'glad',
  'happy', 'jolly', 'keen', 'kind', 'lucky', 'merry', 'mild', 'nimble', 'proud', 'quick', 'quiet', 'rapid',
  'sunny', 'swift', 'tidy', 'vivid', 'warm', 'wise', 'witty', 'young',
] as const
const NOUNS = [
  'badger', 'beacon', 'bison', 'cedar', 'comet', 'crane', 'falcon', 'fern', 'finch', 'fox', 'harbor', 'heron',
  'lantern', 'lark', 'maple', 'meadow', 'otter', 'owl', 'panda', 'pine', 'puffin', 'quail', 'raven', 'river',
  'robin', 'sparrow', 'spruce', 'tiger', 'walrus', 'willow', 'wren', 'yak',
] as const

/** A random readable tunnel name (also what the relay draws quick-share names from): two words and 4 hex digits (16 bits of extra entropy). */
export function randomTunnelName(): string {
  const adjective = ADJECTIVES[randomInt(ADJECTIVES.length)]!
  const noun = NOUNS[randomInt(NOUNS.length)]!
  return `${adjective}-${noun}-${randomBytes(2).toString('hex')}`
}
