/**
 * Node's own HTTP/1.1 parser (llhttp, the binding its http module uses), for code that parses a
 * byte stream that is not a net.Socket: the relay reading responses off a connection stream, the
 * agent's inspector reading copies. Loaded through `_http_common` with process.getBuiltinModule,
 * which also works in the single executable; null on a Node that lacks either.
 */
/** What execute() returns when it stops early: llhttp's error name and where it stopped. */
export interface HttpParseError extends Error {
  /** HPE_PAUSED when a callback paused the parser (returned 21), else the parse error. */
  code: string
  bytesParsed: number
}

export interface HttpParser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void
  execute(data: Buffer): number | HttpParseError
  finish(): number | Error | undefined
  close(): void
  [key: number]: unknown
}

export interface HttpParserModule {
  HTTPParser: {
    new(): HttpParser
    REQUEST: number
    RESPONSE: number
    kOnMessageBegin: number
    kOnHeaders: number
    kOnHeadersComplete: number
    kOnBody: number
    kOnMessageComplete: number
  }
  methods: string[]
}

export const httpParsers = ((): HttpParserModule | null => {
  try {
    const load = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule
    const mod = (load?.call(process, '_http_common') ?? {}) as Partial<HttpParserModule>
    return typeof mod.HTTPParser === 'function' && Array.isArray(mod.methods) ? mod as HttpParserModule : null
  } catch {
    return null
  }
})()
