/**
 * Node's own HTTP/1.1 parser (llhttp, the binding its http module uses), for code that parses a
 * byte stream that is not a net.Socket: the relay reading responses off a connection stream, the
 * agent's inspector reading copies. Loaded through `_http_common` with process.getBuiltinModule,
 * which also works in the single executable; null on a Node that lacks either.
 */
export interface HttpParser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void
  execute(data: Buffer): number | Error
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
