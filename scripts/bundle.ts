/**
 * `npm run build`: everything the published package runs, in dist/:
 * - dist/p2p-registry.mjs, the agent and CLI (the `p2p-registry` bin), and dist/cluster-child.mjs, the
 *   benchmark's agent process, built the same way so the benchmark measures agents as deployed;
 * - dist/client.mjs and dist/client/*.d.ts, the `p2p-registry/client` entry (src/client): no Node
 *   built-ins, no dependencies left to install, so it runs on Node 20+ and in a browser bundle;
 * - dist/ui/, the dashboard the agent serves at /ui/ (src/ui).
 *
 * Why a bundle: an idle agent loaded as 1,274 separate modules keeps about 10 MB more memory than
 * the same code as one script (module records, per-module code, the sources of exports it never uses,
 * which the bundle drops). Whitespace is minified, identifiers are not, so stack traces still name
 * functions; dist/*.map maps them back to src/ with `node --enable-source-maps`. No `keepNames`: its
 * 4,500 `__name(fn, "...")` calls (which keep `fn.name` for the few functions esbuild renames to avoid a
 * clash, like `Foo2`) cost an idle agent 2.5 MB of RSS; the errors the code checks set `name` themselves.
 *
 * Every dependency is in the bundle, LevelDB's native addon included (its prebuilt binaries are copied
 * to dist/classic-level/prebuilds), so the package has no dependencies: `npm install p2p-registry` and
 * the container image fetch nothing else, and what runs is exactly what was tested.
 */
import { chmod, cp, readFile, rm, writeFile } from 'node:fs/promises'
import { gzipSync } from 'node:zlib'
import { build, type Plugin } from 'esbuild'
import ts from 'typescript'

const agentEntries = {
  'p2p-registry': 'src/cli/bin.ts',
  'cluster-child': 'scripts/cluster-child.ts',
}

/**
 * classic-level finds its addon with node-gyp-build from its package folder (`__dirname`, which an ES
 * module has not); in the bundle it looks in dist/classic-level, where the prebuilds are copied.
 */
const levelAddonFromDist: Plugin = {
  name: 'classic-level-addon-from-dist',
  setup(b) {
    b.onLoad({ filter: /[\\/]classic-level[\\/]binding\.js$/ }, () => ({
      contents:
        "module.exports = require('node-gyp-build')(require('node:path').join(__bundleDir, 'classic-level'))",
      loader: 'js',
    }))
  },
}

await rm('dist', { recursive: true, force: true })
await build({
  entryPoints: agentEntries,
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  plugins: [levelAddonFromDist],
  // Some CommonJS dependencies require Node built-ins; an ES module has no `require` of its own.
  banner: {
    js: [
      "import { createRequire as __createRequire } from 'node:module';",
      "import { fileURLToPath as __fileURLToPath } from 'node:url';",
      'const require = __createRequire(import.meta.url);',
      "const __bundleDir = __fileURLToPath(new URL('.', import.meta.url));",
    ].join(' '),
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
await cp('node_modules/classic-level/prebuilds', 'dist/classic-level/prebuilds', { recursive: true })
await chmod('dist/p2p-registry.mjs', 0o755)

await build({
  entryPoints: { client: 'src/client/index.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  // Neutral: a Node built-in imported by mistake fails the build instead of a browser bundle.
  platform: 'neutral',
  format: 'esm',
  target: 'es2022',
  charset: 'ascii',
  legalComments: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
})
emitClientTypes()

// The dashboard (src/ui, GET /ui/): one script and one stylesheet for browsers, each also gzipped,
// which the agent serves to clients that accept it.
await build({
  entryPoints: { app: 'src/ui/app.tsx' },
  outdir: 'dist/ui',
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: ['es2022', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: true,
  charset: 'ascii',
  legalComments: 'external',
  logLevel: 'warning',
})
await cp('src/ui/index.html', 'dist/ui/index.html')
await cp('src/ui/style.css', 'dist/ui/app.css')
for (const file of ['index.html', 'app.js', 'app.css'])
  await writeFile(`dist/ui/${file}.gz`, gzipSync(await readFile(`dist/ui/${file}`), { level: 9 }))

/** dist/client/*.d.ts from src/client, with relative imports ending in .js as published types need. */
function emitClientTypes(): void {
  const program = ts.createProgram(['src/client/index.ts'], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    types: ['node'],
    strict: true,
    skipLibCheck: true,
    allowImportingTsExtensions: true,
    rewriteRelativeImportExtensions: true,
    declaration: true,
    emitDeclarationOnly: true,
    rootDir: 'src/client',
    outDir: 'dist/client',
  })
  // The sources import './api.ts'; published types must say './api.js' (tsc keeps '.ts' in declarations).
  const result = program.emit(undefined, (file, text) =>
    ts.sys.writeFile(file, text.replace(/(from '\.{1,2}\/[^']+)\.ts'/g, "$1.js'")),
  )
  const problems = [...ts.getPreEmitDiagnostics(program), ...result.diagnostics]
  if (problems.length > 0 || result.emitSkipped)
    throw new Error(
      ts.formatDiagnostics(problems, {
        getCanonicalFileName: (f) => f,
        getCurrentDirectory: () => '.',
        getNewLine: () => '\n',
      }),
    )
}
