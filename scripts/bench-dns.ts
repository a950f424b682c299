/**
 * DNS benchmark: queries/s and latency of the agent's DNS server for a slug of 10 instances, against a
 * minimal responder with the same codec that sends a fixed answer (scripts/dns-responder.ts), in the
 * same run, both under the same Node flags, loaded by dnsperf (Debian's `dnsperf`) over UDP.
 *
 *   npm run bench:dns -- [rounds=3] [seconds=10] [outstanding=100]
 *
 * Rounds alternate agent and responder, so the machine's noise falls on both. dnsperf -v prints every
 * response's latency; p50 and p99 come from those.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

const ROUNDS = Number(process.argv[2] ?? 3)
const SECONDS = Number(process.argv[3] ?? 10)
const OUTSTANDING = Number(process.argv[4] ?? 100)
const NAME = 'bench.service.p2p'

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const percentile = (sorted: Float64Array, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

/** The Node flags the bin runs agents with (its shebang), so the responder runs under the same. */
async function binNodeFlags(): Promise<string[]> {
  const bin = await readFile(new URL('../dist/p2p-registry.mjs', import.meta.url), 'utf8')
  const words = bin.slice(0, bin.indexOf('\n')).split(' ')
  return words.slice(words.indexOf('node') + 1)
}

/** Resolves with the first stdout line matching `pattern` (its match), or rejects when the child exits. */
function lineOf(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`exited with ${code} before printing ${pattern}`)))
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = pattern.exec(line)
      if (match) resolve(match)
    })
  })
}

async function startAgent(dir: string): Promise<{ child: ChildProcess; http: string; dnsPort: number }> {
  const child = spawn(new URL('../dist/p2p-registry.mjs', import.meta.url).pathname, ['agent'], {
    env: {
      ...process.env,
      OB_NODE_ID: 'bench-dns',
      OB_DATA_DIR: dir,
      OB_HTTP_ADDR: '127.0.0.1:0',
      OB_P2P_LISTEN: '/ip4/127.0.0.1/tcp/0',
      OB_DNS_ADDR: '127.0.0.1:0',
      OB_MDNS: 'false',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [, http, dnsPort] = await lineOf(child, /"http":"([^"]+)","dns":"127\.0\.0\.1:(\d+)"/)
  return { child, http: http!, dnsPort: Number(dnsPort) }
}

async function dnsperf(port: number, queries: string): Promise<{ qps: number; p50: number; p99: number }> {
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) =>
    execFile(
      'dnsperf',
      [
        '-s',
        '127.0.0.1',
        '-p',
        String(port),
        '-d',
        queries,
        '-l',
        String(SECONDS),
        '-c',
        '1',
        '-T',
        '1',
        '-q',
        String(OUTSTANDING),
        '-v',
      ],
      { maxBuffer: 1 << 30 },
      (err, stdout) => (err ? reject(err) : resolve({ stdout })),
    ),
  )
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(stdout)?.[1])
  const latencies = stdout
    .split('\n')
    .filter((line) => line.startsWith('> NOERROR'))
    .map((line) => Number(line.slice(line.lastIndexOf(' ') + 1)) * 1000)
  const sorted = Float64Array.from(latencies).sort()
  return { qps, p50: percentile(sorted, 50), p99: percentile(sorted, 99) }
}

const dir = await mkdtemp(join(tmpdir(), 'bench-dns-'))
const children: ChildProcess[] = []
try {
  const queries = join(dir, 'queries.txt')
  await writeFile(queries, `${NAME} A\n`)
  const agent = await startAgent(join(dir, 'data'))
  children.push(agent.child)
  for (let i = 0; i < 10; i++) {
    const response = await fetch(`${agent.http}/registry-svc/instance`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ slug: 'bench', url: `http://127.0.1.${i + 1}:8080`, check: { type: 'none' } }),
    })
    if (!response.ok) throw new Error(`register: HTTP ${response.status}`)
  }
  const responder = spawn(
    process.execPath,
    [...(await binNodeFlags()), new URL('./dns-responder.ts', import.meta.url).pathname, '0'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  children.push(responder)
  const responderPort = Number((await lineOf(responder, /^listening (\d+)/))[1])

  const runs = {
    agent: [] as Array<Awaited<ReturnType<typeof dnsperf>>>,
    responder: [] as Array<Awaited<ReturnType<typeof dnsperf>>>,
  }
  console.log(`dnsperf, ${SECONDS} s per run, ${OUTSTANDING} queries outstanding, "${NAME} A" (10 instances)`)
  console.log('round  server     queries/s   p50        p99')
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [server, port] of [
      ['agent', agent.dnsPort],
      ['responder', responderPort],
    ] as const) {
      const result = await dnsperf(port, queries)
      runs[server].push(result)
      console.log(
        `${String(round).padEnd(6)} ${server.padEnd(10)} ${result.qps.toFixed(0).padEnd(11)} ${result.p50.toFixed(3)} ms  ${result.p99.toFixed(3)} ms`,
      )
    }
  }
  const agentQps = median(runs.agent.map((r) => r.qps))
  const responderQps = median(runs.responder.map((r) => r.qps))
  const ratios = runs.agent.map((r, i) => r.qps / runs.responder[i]!.qps)
  console.log(
    `\nmedians: agent ${agentQps.toFixed(0)} queries/s (p99 ${median(runs.agent.map((r) => r.p99)).toFixed(3)} ms), responder ${responderQps.toFixed(0)} queries/s (p99 ${median(runs.responder.map((r) => r.p99)).toFixed(3)} ms)`,
  )
  console.log(
    `agent / responder: ${(agentQps / responderQps).toFixed(2)} (per round ${ratios.map((r) => r.toFixed(2)).join(', ')})`,
  )
} finally {
  for (const child of children) child.kill('SIGTERM')
  await Promise.all(
    children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)),
  )
  await rm(dir, { recursive: true, force: true })
}
