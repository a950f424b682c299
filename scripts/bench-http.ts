/**
 * HTTP lookup benchmark (issue 4): the registry against a bare node:http server sending the same bytes.
 *
 *   node scripts/bench-http.ts [--seconds 10] [--connections 50] [--rounds 3] [--warmup 3]
 *
 * Fills a real replica (LevelDB in a temp dir) with 100,000 instances across 1,000 slugs (100 per
 * slug), serves it with `buildApp` on 127.0.0.1, and drives with autocannon:
 *   (a) GET /registry-svc/instances?slug=<a 100-instance slug>  (the registry)
 *   (b) the same path on a bare node:http server that answers the same bytes with res.end()
 *   (c) once, for information: the registry with its answer cache off (JSON.stringify per request)
 * After a warm-up of each, (a) and (b) alternate (ABBA order) for `rounds` rounds; the medians are
 * printed with their ratio, and the ratio within each round (back-to-back runs). No assertions: targets are registry ≥ 80% of bare req/s and
 * registry p99 < 10 ms.
 *
 * The load generator runs in a child process (this file with `--load`), so the servers under test
 * have this process's event loop to themselves. Both servers live in this process and only one is
 * driven at a time, so this process's CPU time during a run is that server's: CPU µs per request is
 * printed too, a figure that other load on the machine disturbs much less than req/s.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { buildApp, listen } from '../src/http/index.ts'
import type { Instance } from '../src/model/index.ts'
import type { Change } from '../src/replica/change.ts'
import { HybridClock } from '../src/replica/hlc.ts'
import { LevelStore } from '../src/replica/level-store.ts'
import { Replica } from '../src/replica/replica.ts'

const INSTANCES = 100_000
const SLUGS = 1_000
const BATCH = 1_000

interface LoadResult {
  reqPerSec: number
  /** Requests completed in the run. */
  total: number
  /** CPU time this (the server) process spent per request, µs: robust to other load on the machine. */
  cpuUsPerRequest: number
  p50: number
  p99: number
  errors: number
  non2xx: number
  timeouts: number
}

const { values: args } = parseArgs({
  options: {
    load: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '3' },
  },
})

/** Child mode: one autocannon run, result as one JSON line on stdout. */
async function runLoad(url: string, connections: number, seconds: number): Promise<void> {
  type Autocannon = (opts: { url: string; connections: number; duration: number }) => Promise<{
    requests: { average: number; total: number }
    latency: { p50: number; p99: number }
    errors: number
    non2xx: number
    timeouts: number
  }>
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon
  const r = await autocannon({ url, connections, duration: seconds })
  const result: Omit<LoadResult, 'cpuUsPerRequest'> = {
    reqPerSec: r.requests.average,
    total: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors,
    non2xx: r.non2xx,
    timeouts: r.timeouts,
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

/** Runs autocannon against `url` in a child process; measures this process's CPU time meanwhile. */
async function drive(url: string, seconds: number, connections: number): Promise<LoadResult> {
  const cpu = process.cpuUsage()
  const result = await load(url, seconds, connections)
  const used = process.cpuUsage(cpu)
  return { ...result, cpuUsPerRequest: (used.user + used.system) / Math.max(1, result.total) }
}

function load(
  url: string,
  seconds: number,
  connections: number,
): Promise<Omit<LoadResult, 'cpuUsPerRequest'>> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        import.meta.filename,
        '--load',
        url,
        '--seconds',
        String(seconds),
        '--connections',
        String(connections),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`load generator exited with ${code}`))
      else resolve(JSON.parse(out) as Omit<LoadResult, 'cpuUsPerRequest'>)
    })
  })
}

function makeChanges(): Change[] {
  const ts = Date.now()
  const lastHeartbeat = new Date(ts).toISOString()
  const changes: Change[] = []
  for (let i = 0; i < INSTANCES; i++) {
    const ip = `127.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
    const value: Instance = {
      id: `inst_${i.toString(16).padStart(16, '0')}`,
      url: `http://${ip}:8080/api/v1`,
      scheme: 'http',
      ip,
      port: 8080,
      path: '/api/v1',
      slug: `svc-${i % SLUGS}`,
      deploymentId: `depl_${(i % 5000).toString().padStart(6, '0')}`,
      nodeUrl: `http://node-${i % 10}.cluster.internal:11337`,
      tags: ['prod', `zone-${i % 3}`],
      status: 'Healthy',
      lastHeartbeat,
    }
    changes.push({ kind: 'instance', id: value.id, version: { ts, c: i, node: `node-${i % 10}` }, value })
  }
  return changes
}

async function listenBare(bytes: Buffer): Promise<{ server: Server; url: string }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length })
    res.end(bytes)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
const ms = (n: number) => `${n.toFixed(n < 10 ? 2 : 1)} ms`

async function main(): Promise<void> {
  const seconds = Number(args.seconds)
  const connections = Number(args.connections)
  const rounds = Number(args.rounds)
  const warmup = Number(args.warmup)
  const dir = await mkdtemp(join(tmpdir(), 'bench-http-'))
  const closers: Array<() => Promise<unknown>> = []
  try {
    const replica = await Replica.open({
      store: new LevelStore({ path: dir }),
      clock: new HybridClock({ nodeId: 'bench' }),
      log: pino({ level: 'warn' }),
    })
    closers.push(() => replica.close())
    const changes = makeChanges()
    const fillStart = performance.now()
    for (let i = 0; i < changes.length; i += BATCH) await replica.apply(changes.slice(i, i + BATCH), 'sync')
    console.log(
      `replica: ${fmt(replica.counts().instances)} instances across ${fmt(SLUGS)} slugs, LevelDB in ${dir} (filled in ${fmt(performance.now() - fillStart)} ms)`,
    )

    // The agent's configuration: request logging on (reads at debug, logger at info), no token.
    const components = {
      replica,
      self: { nodeId: 'bench', selfUrl: 'http://127.0.0.1:11337' },
      log: pino({ level: 'info' }),
      metricsSources: { replicaCounts: () => replica.counts(), peersConnected: () => 0 },
    }
    const app = await buildApp({}, components)
    closers.push(() => app.close())
    const registry = await listen(app, { host: '127.0.0.1', port: 0 })
    const uncached = await buildApp({ responseCache: { maxEntries: 0 } }, components)
    closers.push(() => uncached.close())
    const uncachedAddress = await listen(uncached, { host: '127.0.0.1', port: 0 })

    const path = '/registry-svc/instances?slug=svc-42'
    const response = await fetch(`${registry.url}${path}`)
    const bytes = Buffer.from(await response.arrayBuffer())
    const count = (JSON.parse(bytes.toString()) as { instances: unknown[] }).instances.length
    const bare = await listenBare(bytes)
    closers.push(() => new Promise((resolve) => bare.server.close(resolve)))
    console.log(`lookup: GET ${path} → ${count} instances, ${fmt(bytes.length)} bytes`)
    console.log(
      `load: autocannon in a child process, ${connections} connections, ${seconds} s per run after a ${warmup} s warm-up, ${rounds} rounds; ${cpus().length} CPUs, Node ${process.version}\n`,
    )

    const targets = {
      registry: `${registry.url}${path}`,
      bare: `${bare.url}${path}`,
      uncached: `${uncachedAddress.url}${path}`,
    }
    for (const url of [targets.registry, targets.bare]) await drive(url, warmup, connections)

    const results: Record<'registry' | 'bare', LoadResult[]> = { registry: [], bare: [] }
    for (let round = 1; round <= rounds; round++) {
      // ABBA order, so a machine that speeds up or slows down over the run favours neither server.
      const order = round % 2 === 1 ? (['registry', 'bare'] as const) : (['bare', 'registry'] as const)
      for (const name of order) {
        const r = await drive(targets[name], seconds, connections)
        results[name].push(r)
        const problems = r.errors + r.non2xx + r.timeouts
        console.log(
          `round ${round} ${name.padEnd(8)} ${fmt(r.reqPerSec).padStart(7)} req/s  p50 ${ms(r.p50).padStart(8)}  p99 ${ms(r.p99).padStart(8)}  server CPU ${r.cpuUsPerRequest.toFixed(1).padStart(5)} µs/req${problems > 0 ? `  (${r.errors} errors, ${r.non2xx} non-2xx, ${r.timeouts} timeouts)` : ''}`,
        )
      }
    }
    await drive(targets.uncached, warmup, connections)
    const nocache = await drive(targets.uncached, seconds, connections)

    const med = (name: 'registry' | 'bare', key: 'reqPerSec' | 'p99' | 'p50' | 'cpuUsPerRequest') =>
      median(results[name].map((r) => r[key]))
    const ratio = med('registry', 'reqPerSec') / med('bare', 'reqPerSec')
    // Each round's two runs are back to back, so their ratio is less exposed to drift in machine speed.
    const roundRatios = results.registry.map((r, i) => r.reqPerSec / results.bare[i]!.reqPerSec)
    console.log(`\nmedians of ${rounds} rounds:`)
    console.log('| server | req/s | p50 | p99 | server CPU per request |')
    console.log('|---|---|---|---|---|')
    for (const name of ['registry', 'bare'] as const) {
      console.log(
        `| ${name === 'registry' ? 'registry (buildApp)' : 'bare node:http, same bytes'} | ${fmt(med(name, 'reqPerSec'))} | ${ms(med(name, 'p50'))} | ${ms(med(name, 'p99'))} | ${med(name, 'cpuUsPerRequest').toFixed(1)} µs |`,
      )
    }
    console.log(
      `| registry, answer cache off (1 run, for information) | ${fmt(nocache.reqPerSec)} | ${ms(nocache.p50)} | ${ms(nocache.p99)} | ${nocache.cpuUsPerRequest.toFixed(1)} µs |`,
    )
    console.log(
      `\nregistry / bare throughput per round: ${roundRatios.map((r) => `${(r * 100).toFixed(1)}%`).join(', ')} (median ${(median(roundRatios) * 100).toFixed(1)}%)`,
    )
    const cpuRatio = med('bare', 'cpuUsPerRequest') / med('registry', 'cpuUsPerRequest')
    console.log(
      `bare / registry server CPU per request: ${(cpuRatio * 100).toFixed(1)}% (the throughput ratio a CPU-bound server would reach, unaffected by other load)`,
    )
    console.log(
      `registry / bare throughput: ${(ratio * 100).toFixed(1)}% (target ≥ 80%: ${ratio >= 0.8 ? 'met' : 'NOT met'}); registry p99 ${ms(med('registry', 'p99'))} (target < 10 ms: ${med('registry', 'p99') < 10 ? 'met' : 'NOT met'})`,
    )
  } finally {
    for (const close of closers.reverse()) await close()
    await rm(dir, { recursive: true, force: true })
  }
}

if (args.load !== undefined) await runLoad(args.load, Number(args.connections), Number(args.seconds))
else await main()
