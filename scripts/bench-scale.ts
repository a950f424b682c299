/**
 * How the cluster's costs grow with its size (issue 15, "measure first"): runs the cluster benchmark
 * (scripts/bench-cluster.ts, agents as separate processes on loopback, default settings) for each
 * size and prints its figures side by side, so growth per node is visible.
 *
 *   npm run bench:scale -- [sizes=10,25,50] [idleSeconds=30]
 */
import { spawn } from 'node:child_process'

const SIZES = (process.argv[2] ?? '10,25,50').split(',').map(Number)
const IDLE_SECONDS = process.argv[3] ?? '30'

function run(agents: number): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        new URL('./bench-cluster.ts', import.meta.url).pathname,
        String(agents),
        '200',
        '0',
        IDLE_SECONDS,
        '50',
      ],
      { env: { ...process.env, BENCH_JSON: '1' }, stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let figures: Record<string, number> | undefined
    child.stdout.setEncoding('utf8')
    let buffered = ''
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline)
        buffered = buffered.slice(newline + 1)
        if (line.startsWith('FIGURES ')) figures = JSON.parse(line.slice('FIGURES '.length))
        else console.log(`  [${agents}] ${line}`)
      }
    })
    child.on('exit', (code) =>
      figures ? resolve(figures) : reject(new Error(`bench-cluster ${agents} exited with ${code}`)),
    )
  })
}

const rows: Array<Record<string, number>> = []
for (const size of SIZES) rows.push(await run(size))

const kb = (x: number) => `${(x / 1024).toFixed(2)} KB/s`
const s = (x: number) => `${(x / 1000).toFixed(1)} s`
const ms = (x: number) => `${x.toFixed(1)} ms`
const lines: Array<[string, (r: Record<string, number>) => string]> = [
  ['idle traffic sent per node', (r) => kb(r.idleBytesPerNodePerS!)],
  ['libp2p connections per agent, median / max', (r) => `${r.connectionsMedian} / ${r.connectionsMax}`],
  ['idle CPU per node (% of one core)', (r) => `${r.idleCpuPerNodePct!.toFixed(2)}%`],
  ['beat size (0: none sent)', (r) => `${r.beatBytes} B`],
  ['SWIM frames per node per s', (r) => (r.swimFramesPerNodePerS ?? 0).toFixed(1)],
  [
    'SWIM frame mean / largest',
    (r) => `${(r.swimFrameBytes ?? 0).toFixed(0)} / ${r.swimLargestBytes ?? 0} B`,
  ],
  ['gossip message (one change)', (r) => `${r.gossipMessageBytes!.toFixed(0)} B`],
  [
    'bytes sent cluster-wide per change (× message × N)',
    (r) => `${(r.clusterBytesPerChange! / 1024).toFixed(1)} KB (${r.copiesPerNodePerChange!.toFixed(2)})`,
  ],
  ['every node sees every node alive', (r) => s(r.membershipMs!)],
  ['write propagation p50 / p99', (r) => `${ms(r.propagationP50Ms!)} / ${ms(r.propagationP99Ms!)}`],
  ['write to all agents p99', (r) => ms(r.propagationAllP99Ms!)],
  ['kill -9 detection median / worst', (r) => `${s(r.detectionMedianMs!)} / ${s(r.detectionMaxMs!)}`],
  ['live nodes flagged unreachable (agent, node pairs)', (r) => String(r.falseUnreachable)],
]
console.log(`\n| measure | ${rows.map((r) => `N = ${r.agents}`).join(' | ')} |`)
console.log(`|---|${rows.map(() => '---').join('|')}|`)
for (const [name, format] of lines) console.log(`| ${name} | ${rows.map(format).join(' | ')} |`)
