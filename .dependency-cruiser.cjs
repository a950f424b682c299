/**
 * The layer rule of src/ (docs/architecture.md): each folder imports only from the folders below it,
 * so a unit can be read, tested and replaced with what is under it alone. `npm run lint` runs this.
 *
 *   cli        the command line; runs an agent or talks to one over HTTP
 *   agent      configuration and wiring: builds every unit and starts them in order
 *   dns        the DNS server, answering from the HTTP API's read model (instances as answered)
 *   http       routes over the replica; reads liveness and p2p through interfaces the agent hands in
 *   liveness   heartbeats, failure detection, instance probes; uses the beat channel of p2p
 *   p2p        libp2p node, gossip, anti-entropy, discovery, beat channel
 *   replica    clock, merge order, store, indexes, digests
 *   model      entities, validation, normalisation, wire constants
 *   support    logger, emitSafely, jitter, InitError: imports nothing from src
 *
 * src/client (the `p2p-registry/client` entry, used by services) stands apart: it imports nothing
 * else from src, and nothing in src but the dashboard imports it, so it carries no server code.
 * src/ui (the dashboard, a browser bundle) imports only src/client.
 */
const LAYERS = ['support', 'model', 'replica', 'p2p', 'liveness', 'http', 'dns', 'agent', 'cli']
const above = (layer) => LAYERS.slice(LAYERS.indexOf(layer) + 1)

module.exports = {
  forbidden: [
    ...LAYERS.filter((layer) => above(layer).length > 0).map((layer) => ({
      name: `${layer}-imports-only-downwards`,
      comment: `src/${layer} may import only from ${LAYERS.slice(0, LAYERS.indexOf(layer)).join(', ') || 'nothing in src'} (see .dependency-cruiser.cjs)`,
      severity: 'error',
      from: { path: `^src/${layer}/` },
      to: { path: `^src/(${above(layer).join('|')})/` },
    })),
    {
      name: 'client-stands-apart',
      comment: 'src/client imports nothing else from src: it is what services bundle',
      severity: 'error',
      from: { path: '^src/client/' },
      to: { path: '^src/(?!client/)' },
    },
    {
      name: 'nothing-imports-client',
      comment: 'the server does not depend on the client entry',
      severity: 'error',
      from: { path: '^src/(?!client/|ui/)' },
      to: { path: '^src/client/' },
    },
    {
      name: 'ui-is-a-browser-bundle',
      comment: 'src/ui runs in browsers: it may use src/client, nothing of the server',
      severity: 'error',
      from: { path: '^src/ui/' },
      to: { path: '^src/(?!client/|ui/)' },
    },
    {
      name: 'nothing-imports-ui',
      comment: 'the agent serves the built dashboard (dist/ui), it does not import its code',
      severity: 'error',
      from: { path: '^src/(?!ui/)' },
      to: { path: '^src/ui/' },
    },
    {
      name: 'no-circular',
      comment: 'modules that import each other cannot be understood or loaded one at a time',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
}
