/**
 * `npm run build`: bundles the agent into one ES module, dist/p2p-registry.mjs (the `p2p-registry` bin),
 * and the benchmark's agent process into dist/cluster-child.mjs, built the same way so the benchmark
 * measures agents as they are deployed.
 *
 * Why a bundle: an idle agent loaded as 1,274 separate modules keeps about 10 MB more memory than
 * the same code as one script (module records, per-module code, the sources of exports it never uses,
 * which the bundle drops). Whitespace is minified, identifiers are not, so stack traces still name
 * functions; dist/*.map maps them back to src/ with `node --enable-source-maps`. No `keepNames`: its
 * 4,500 `__name(fn, "...")` calls (which keep `fn.name` for the few functions esbuild renames to avoid a
 * clash, like `Foo2`) cost an idle agent 2.5 MB of RSS; the errors the code checks set `name` themselves.
 */
import { chmod, rm } from 'node:fs/promises'
import { build } from 'esbuild'

const entries = {
  'p2p-registry': 'src/cli/bin.ts',
  'cluster-child': 'scripts/cluster-child.ts',
}

await rm('dist', { recursive: true, force: true })
await build({
  entryPoints: entries,
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  // classic-level loads a native addon from its package; pino-pretty is loaded only for a terminal.
  external: ['classic-level', 'pino-pretty'],
  // Some CommonJS dependencies require Node built-ins; an ES module has no `require` of its own.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  minifyWhitespace: true,
  minifySyntax: true,
  // ASCII only, comments dropped (licence notices go to dist/*.LEGAL.txt): one non-Latin-1 character
  // would make V8 hold the whole 2.6 MB source as UTF-16, twice the memory.
  charset: 'ascii',
  legalComments: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
})
await chmod('dist/p2p-registry.mjs', 0o755)
