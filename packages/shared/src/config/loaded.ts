/** What a loader returns: the frozen config and the warnings (problems that do not stop it). */
export interface Loaded<T> {
  config: T
  /** One line each, `path: message`; print them, never ignore them silently. */
  warnings: string[]
}
