/** The label value that stands for every value past the cap. */
export const OTHER_LABEL = 'other'

/**
 * Keeps a metric label's cardinality bounded: the first `cap` distinct values keep their own
 * label, later ones share OTHER_LABEL until a kept value is released (its series removed). A host
 * name comes from whatever agents publish (quick shares pick random names), so without a cap a
 * long-running relay would grow one series set per name it ever saw.
 */
export class LabelFolder {
  private readonly kept = new Set<string>()

  constructor(readonly cap: number) {
    if (!Number.isInteger(cap) || cap < 1) throw new RangeError(`label cap must be a positive integer, got ${cap}`)
  }

  /** The label to use for `value`: itself while there is room (or it already has one), else OTHER_LABEL. */
  fold(value: string): string {
    if (this.kept.has(value)) return value
    if (this.kept.size >= this.cap) return OTHER_LABEL
    this.kept.add(value)
    return value
  }

  /** True once `value` holds a label of its own. */
  has(value: string): boolean {
    return this.kept.has(value)
  }

  /** Gives `value`'s slot back (its series are gone); a later fold may hand the slot to another value. */
  release(value: string): void {
    this.kept.delete(value)
  }

  /** The values holding a label now (a copy: release() may be called while iterating it). */
  values(): string[] {
    return [...this.kept]
  }

  get size(): number {
    return this.kept.size
  }
}
