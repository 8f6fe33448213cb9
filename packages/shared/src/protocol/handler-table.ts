/**
 * Dispatch tables keyed by names a peer sends (`op`, `type`). A plain object literal would also
 * answer to inherited names (`constructor`, `toString`, `__proto__`), so a peer could call
 * Object's own methods (issue 16: `op: "constructor"` crashed the relay). Tables built here have no
 * prototype and are frozen; `lookupHandler` only returns own entries.
 */
export type HandlerTable<H> = Readonly<Record<string, H>>

export function handlerTable<T extends Record<string, unknown>>(entries: T): Readonly<T> {
  return Object.freeze(Object.assign(Object.create(null) as T, entries))
}

/** The table's own handler for `name`, or undefined for unknown and inherited names alike. */
export function lookupHandler<H>(table: HandlerTable<H>, name: string): H | undefined {
  return Object.hasOwn(table, name) ? table[name] : undefined
}
