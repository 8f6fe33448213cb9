// What the two bundles of the CLIs share: scripts/bundle.mjs (the ESM bundle every install path
// runs) and scripts/sea.mjs (the CommonJS bundle inside the single executables). Their entries, the
// esbuild options both use, and the plugins.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const PINO_IN_THREAD = path.join(root, 'scripts/sea/pino-in-thread.cjs')
const SHARED_SRC = path.join(root, 'packages/shared/src')

/**
 * The product's `import.meta.url` uses, made static: a CommonJS bundle has no import.meta, so
 * `readFileSync(new URL('../package.json', import.meta.url), 'utf8')` (the version read) becomes
 * the file's text. Any other import.meta left in product code fails the build, not the user.
 */
export const staticImportMeta = {
  name: 'porchlight-static-import-meta',
  setup(b) {
    b.onLoad({ filter: /[\\/]packages[\\/][^\\/]+[\\/]src[\\/].*\.ts$/ }, (args) => {
      let text = readFileSync(args.path, 'utf8')
      if (!text.includes('import.meta')) return undefined
      text = text.replace(
        /readFileSync\(new URL\((['"])(\.\.?\/[^'"]*\.json)\1, import\.meta\.url\), (['"])utf-?8\3\)/g,
        (_m, _q, rel) => JSON.stringify(readFileSync(path.resolve(path.dirname(args.path), rel), 'utf8')),
      )
      const left = text.split('\n').findIndex((line) => line.includes('import.meta'))
      if (left !== -1) {
        return { errors: [{ text: `import.meta has no value in the single executable (${path.relative(root, args.path)}:${left + 1}); read the file another way or teach scripts/sea.mjs this pattern` }] }
      }
      return { contents: text, loader: 'ts' }
    })
  },
}

/** The product's `pino` is scripts/sea/pino-in-thread.cjs, which then loads the real one. */
export const pinoWithoutWorkers = {
  name: 'porchlight-pino-in-thread',
  setup(b) {
    b.onResolve({ filter: /^pino(-pretty)?$/ }, async (args) => {
      if (args.pluginData === 'real') return undefined
      if (args.importer === PINO_IN_THREAD) {
        return b.resolve(args.path, { kind: args.kind, resolveDir: SHARED_SRC, pluginData: 'real' })
      }
      if (args.path === 'pino' && args.importer.startsWith(path.join(root, 'packages'))) return { path: PINO_IN_THREAD }
      return undefined
    })
  },
}

/**
 * ws uses the native add-ons bufferutil and utf-8-validate when require() finds them and plain
 * JavaScript otherwise. In the executable they are modules that throw, so ws takes its fallback
 * without the require() of a file (which a single executable warns about on stderr).
 */
export const absentAddons = {
  name: 'porchlight-absent-addons',
  setup(b) {
    b.onResolve({ filter: /^(bufferutil|utf-8-validate)$/ }, (args) => ({ path: args.path, namespace: 'absent-addon' }))
    b.onLoad({ filter: /.*/, namespace: 'absent-addon' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is not part of the single executable`)})`,
      loader: 'js',
    }))
  },
}

/**
 * zod's main module re-exports every one of its ~50 locales (`z.locales`), which the product never
 * uses: error messages are English, from the `en` locale zod imports on its own. In the bundles
 * the namespace is empty, which keeps ~260 kB of minified code (and its source text, which V8 keeps
 * in memory) out of every process.
 */
export const withoutZodLocales = {
  name: 'porchlight-without-zod-locales',
  setup(b) {
    b.onResolve({ filter: /[\\/]locales[\\/]index\.js$/ }, (args) => (/[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: 'zod-locales', namespace: 'no-zod-locales' } : undefined))
    b.onLoad({ filter: /.*/, namespace: 'no-zod-locales' }, () => ({ contents: 'export {}', loader: 'js' }))
  },
}

/** Each CLI's source entry, relative to the checkout. */
export const CLI_ENTRIES = {
  agent: 'packages/agent/src/bin.ts',
  relay: 'packages/server/src/bin.ts',
}

/** The esbuild options both bundles use for one CLI; each adds its format and output. */
export function cliBuildOptions() {
  return {
    bundle: true,
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    // The workspace packages' exports point at their TypeScript sources under this condition.
    conditions: ['porchlight-source'],
    minify: true,
    legalComments: 'eof',
    plugins: [staticImportMeta, pinoWithoutWorkers, absentAddons, withoutZodLocales],
    logLevel: 'silent',
  }
}

/** A CLI's entry as an absolute path. */
export function cliEntry(target) {
  return path.join(root, CLI_ENTRIES[target])
}
