/**
 * What checks cost (README, Performance): one agent process owning N instances, each checked every
 * INTERVAL ms, all served by one HTTP server in another process; the agent's CPU (from /proc, % of one
 * core) and the registry writes the checks cause at steady state (changes published by the agent's
 * gossip), for checks of type none (the baseline: the same agent and instances, nothing probed), tcp
 * and http, measured in the same run.
 *
 *   npm run bench:checks [-- instances=1000 intervalMs=5000 windows=3 windowSeconds=10]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const INSTANCES = Number(process.argv[2] ?? 1000)
const INTERVAL_MS = Number(process.argv[3] ?? 5000)
const WINDOWS = Number(process.argv[4] ?? 3)
const WINDOW_S = Number(process.argv[5] ?? 10)
const BIN = join(import.meta.dirname, '../dist/p2p-registry.mjs')
const TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim())

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** CPU seconds (user + system) a process has used so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S
}

async function publishedChanges(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return Number(/gossip_changes_total\{direction="published"\} (\d+)/.exec(text)?.[1] ?? 0)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function waitUntil(what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await ok().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

/** The server every instance points at: answers 200 to any GET, in its own process. */
async function startTarget(): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort()
  const child = spawn(
    process.execPath,
    [
      '-e',
      `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1', () => console.log('up'))`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  await once(child.stdout!, 'data')
  return { child, port }
}

interface Figures {
  cpu: number[]
  writes: number[]
}

async function measure(check: 'none' | 'tcp' | 'http', target: number): Promise<Figures> {
  const dir = await mkdtemp(join(tmpdir(), 'p2p-registry-bench-checks-'))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const agent = spawn(process.execPath, ['--max-semi-space-size=1', BIN, 'agent'], {
    env: {
      ...process.env,
      OB_NODE_ID: 'bench',
      OB_SELF_URL: url,
      OB_HTTP_ADDR: `127.0.0.1:${port}`,
      OB_DNS_ADDR: '127.0.0.1:0',
      OB_P2P_LISTEN: '/ip4/127.0.0.1/tcp/0',
      OB_MDNS: 'false',
      OB_DATA_DIR: dir,
      OB_LOG_LEVEL: 'warn',
      OB_PROBE_INTERVAL_MS: String(INTERVAL_MS),
      OB_DEFAULT_CHECK: check,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  try {
    await waitUntil('the agent', async () => (await fetch(`${url}/healthz`)).ok, 20_000)
    for (let n = 0; n < INSTANCES; n += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, INSTANCES - n) }, (_, k) =>
          fetch(`${url}/registry-svc/instance`, {
            method: 'PUT',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ url: `http://127.0.0.1:${target}/i/${n + k}`, slug: 'bench' }),
          }).then((r) => {
            if (r.status !== 201) throw new Error(`registration answered ${r.status}`)
          }),
        ),
      )
    }
    if (check !== 'none') {
      await waitUntil(
        'every instance checked Healthy',
        async () => {
          const { instances } = (await (
            await fetch(`${url}/registry-svc/instances?status=Healthy`)
          ).json()) as {
            instances: unknown[]
          }
          return instances.length === INSTANCES
        },
        INTERVAL_MS * 4 + 30_000,
      )
    }
    // A whole interval of steady state before measuring.
    await sleep(INTERVAL_MS)
    const figures: Figures = { cpu: [], writes: [] }
    for (let w = 0; w < WINDOWS; w++) {
      const [cpu0, writes0, t0] = [
        await cpuSeconds(agent.pid!),
        await publishedChanges(url),
        performance.now(),
      ]
      await sleep(WINDOW_S * 1000)
      const [cpu1, writes1, t1] = [
        await cpuSeconds(agent.pid!),
        await publishedChanges(url),
        performance.now(),
      ]
      const seconds = (t1 - t0) / 1000
      figures.cpu.push(((cpu1 - cpu0) / seconds) * 100)
      figures.writes.push((writes1 - writes0) / seconds)
    }
    return figures
  } finally {
    agent.kill('SIGTERM')
    await once(agent, 'exit')
    await rm(dir, { recursive: true, force: true })
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!
const range = (values: number[], digits: number) =>
  `${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)}`

const target = await startTarget()
try {
  console.log(
    `checks: ${INSTANCES} instances on one agent, interval ${INTERVAL_MS} ms, ${WINDOWS} windows of ${WINDOW_S} s; Node ${process.version}`,
  )
  const results = new Map<string, Figures>()
  for (const check of ['none', 'tcp', 'http'] as const) results.set(check, await measure(check, target.port))
  const base = median(results.get('none')!.cpu)
  for (const [check, { cpu, writes }] of results) {
    const perThousand = (median(cpu) * 1000) / INSTANCES
    console.log(
      `${check.padEnd(5)} agent CPU ${median(cpu).toFixed(2)}% of one core (range ${range(cpu, 2)}), ` +
        `${perThousand.toFixed(2)}% per 1000 instances, ${(median(cpu) / base).toFixed(2)}x none; ` +
        `writes at steady state ${median(writes).toFixed(2)}/s (range ${range(writes, 2)})`,
    )
  }
  const checkCost = (check: string) => ((median(results.get(check)!.cpu) - base) * 1000) / INSTANCES
  console.log(
    `cost of the checks alone, per 1000 instances at ${INTERVAL_MS} ms: tcp ${checkCost('tcp').toFixed(2)}%, http ${checkCost('http').toFixed(2)}% of one core`,
  )
} finally {
  target.child.kill()
}
