/**
 * Watch benchmark: agents as deployed (the bin, `dist/p2p-registry.mjs agent`, one process each) on loopback.
 *
 *   npm run bench:watch -- [agents=10] [seconds=15] [rates=20,200] [watchers=10000]
 *
 * 1. Propagation to watchers: `agents` agents, each watched by one client (`/registry-svc/instances/watch`),
 *    writes through agent 0's HTTP API at each rate for `seconds`. For every (write, agent) pair, the time
 *    from sending the PUT to the first watch event on that agent whose answer holds the write (or a later
 *    write of the same instance: a watch coalesces, so an overwritten value may never be sent): p50/p99/max.
 * 2. Idle watchers: `watchers` SSE streams open on one agent. Its RSS and CPU idle without them and with
 *    them (RSS per watcher), and the fan-out time of one change: from the PUT to the last stream's event.
 *
 * The writes cycle over 20 instances of one slug with `check: none` (no probes), so each answer stays small.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { createParser } from 'eventsource-parser'

const AGENTS = Number(process.argv[2] ?? 10)
const SECONDS = Number(process.argv[3] ?? 15)
const RATES = (process.argv[4] ?? '20,200').split(',').map(Number)
const WATCHERS = Number(process.argv[5] ?? 10_000)
const SLUG = 'watched'
const IDS = 20

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const now = () => performance.timeOrigin + performance.now()
const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}
const ms = (x: number) => `${x.toFixed(1)} ms`

interface AgentProcess {
  child: ChildProcess
  url: string
  multiaddr: string
  dir: string
}

async function startAgent(index: number, peers: string[]): Promise<AgentProcess> {
  const dir = await mkdtemp(join(tmpdir(), `bench-watch-${index}-`))
  const child = spawn(new URL('../dist/p2p-registry.mjs', import.meta.url).pathname, ['agent'], {
    env: {
      ...process.env,
      OB_NODE_ID: `watch-${index}`,
      OB_DATA_DIR: dir,
      OB_HTTP_ADDR: '127.0.0.1:0',
      OB_DNS_ADDR: '127.0.0.1:0',
      OB_P2P_LISTEN: '/ip4/127.0.0.1/tcp/0',
      OB_PEERS: peers.join(','),
      OB_MDNS: 'false',
      OB_LOG_LEVEL: 'info',
      ...(process.env.BENCH_PROFILE === String(index)
        ? { NODE_OPTIONS: '--cpu-prof --cpu-prof-dir=/tmp/prof' }
        : {}),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: child.stdout! })
  let url = ''
  let multiaddr = ''
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`agent ${index} exited with ${code}`)))
    lines.on('line', (text) => {
      const line = JSON.parse(text) as { msg: string; http?: string; listen?: string[] }
      if (line.msg === 'p2p node started') multiaddr = line.listen![0]!
      if (line.msg === 'agent started') url = line.http!
      if (url && multiaddr) resolve()
    })
  })
  return { child, url, multiaddr, dir }
}

async function stopAgent(agent: AgentProcess): Promise<void> {
  if (agent.child.exitCode === null) {
    agent.child.kill('SIGTERM')
    await new Promise((resolve) => agent.child.once('exit', resolve))
  }
  await rm(agent.dir, { recursive: true, force: true })
}

async function waitUntil(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 64 })

/** A PUT or GET on the agent's API over a kept-alive connection. */
function call(url: string, method: string, body?: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method, agent: keepAlive, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk) => {
          text += chunk
        })
        res.on('end', () =>
          res.statusCode! < 300 ? resolve(text) : reject(new Error(`${res.statusCode} ${text}`)),
        )
      },
    )
    req.on('error', reject)
    req.end(body === undefined ? undefined : JSON.stringify(body))
  })
}

function register(agent: AgentProcess, seq: number): Promise<string> {
  const n = seq % IDS
  return call(`${agent.url}/registry-svc/instance`, 'PUT', {
    id: `w-${n}`,
    slug: SLUG,
    url: `http://127.0.0.1:${20_000 + n}`,
    tags: [`s${seq}`],
    check: { type: 'none' },
  })
}

/** One SSE stream on node:http (10,000 of them in one process: lighter than fetch's). */
function openWatch(url: string, onData: (data: string, at: number) => void): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`watch: HTTP ${res.statusCode}`))
      const parser = createParser({ onEvent: (event) => onData(event.data, now()) })
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => parser.feed(chunk))
      res.on('error', () => {})
      resolve(() => req.destroy())
    })
    req.on('error', reject)
    req.end()
  })
}

/** utime + stime of a process, in ms, and its RSS in bytes (from /proc). */
async function usage(pid: number): Promise<{ cpuMs: number; rss: number }> {
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)![1])
  return { cpuMs: ((Number(stat[11]) + Number(stat[12])) * 1000) / 100, rss: rssKb * 1024 }
}

async function idleCpu(pid: number, seconds: number): Promise<number> {
  const before = await usage(pid)
  const t0 = now()
  await sleep(seconds * 1000)
  const after = await usage(pid)
  return (after.cpuMs - before.cpuMs) / (now() - t0)
}

/** How many agents say they hear every publisher directly (`p2p_registry_gossip_hears_all`). */
async function hearingAll(agents: AgentProcess[]): Promise<number> {
  const texts = await Promise.all(agents.map((a) => call(`${a.url}/metrics`, 'GET')))
  return texts.filter((text) => /^p2p_registry_gossip_hears_all 1$/m.test(text)).length
}

async function propagation(agents: AgentProcess[]): Promise<void> {
  // seen[agent] = for each instance id, the newest seq its watcher has seen
  const newest = agents.map(() => new Map<string, number>())
  const sentAt = new Map<number, number>()
  const latencies: number[][] = []
  let phase = 0
  const cpuPerWrite: Array<{ writer: number; others: number; load: number }> = []
  const putMs: number[][] = []
  const closers = await Promise.all(
    agents.map((agent, a) =>
      openWatch(`${agent.url}/registry-svc/instances/watch?slug=${SLUG}`, (data, at) => {
        const { instances } = JSON.parse(data) as { instances: Array<{ id: string; tags?: string[] }> }
        for (const instance of instances) {
          const seq = Number(instance.tags?.[0]?.slice(1))
          const from = newest[a]!.get(instance.id) ?? -1
          if (seq <= from) continue
          newest[a]!.set(instance.id, seq)
          // Every write of this instance up to seq is now visible on this agent.
          for (let s = seq; s > from; s -= IDS) {
            const sent = sentAt.get(s)
            if (sent !== undefined) latencies[phase]?.push(at - sent)
          }
        }
      }),
    ),
  )
  let seq = 0
  // Prime: every instance exists everywhere before timing starts.
  for (; seq < IDS; seq++) await register(agents[0]!, seq)
  await waitUntil('the primed instances on every watcher', () => newest.every((m) => m.size === IDS))
  // Whether gossip forwards copies (p2p/gossip-reach.ts): in a full mesh every agent should hear all.
  await waitUntil(
    'every agent to hear every publisher',
    async () => (await hearingAll(agents)) === agents.length,
    15_000,
  ).catch(() => undefined)
  console.log(
    `\nagents that hear every publisher (no forwarded copies): ${await hearingAll(agents)}/${agents.length}`,
  )
  console.log(`write on agent 0 → watch event on each of ${agents.length} agents (${SECONDS} s per rate)`)
  console.log('rate       writes   p50        p99        max        received')
  for (const [p, rate] of RATES.entries()) {
    phase = p
    latencies[p] = []
    putMs[p] = []
    const first = seq
    const total = Math.round(rate * SECONDS)
    const interval = 1000 / rate
    const cpuBefore = await Promise.all(agents.map((a) => usage(a.child.pid!)))
    const ownBefore = process.cpuUsage()
    const start = now()
    const inFlight: Promise<unknown>[] = []
    for (let i = 0; i < total; i++) {
      const due = start + i * interval
      const wait = due - now()
      if (wait > 1) await sleep(wait)
      const s = seq++
      sentAt.set(s, now())
      const t = now()
      inFlight.push(register(agents[0]!, s).then(() => putMs[p]!.push(now() - t)))
    }
    await Promise.all(inFlight)
    const last = seq - 1
    await waitUntil(
      `write ${last} on every watcher`,
      () => newest.every((m) => (m.get(`w-${last % IDS}`) ?? -1) >= last),
      30_000,
    )
    const cpuAfter = await Promise.all(agents.map((a) => usage(a.child.pid!)))
    const own = process.cpuUsage(ownBefore)
    const cpuMs = cpuAfter.map((u, i) => u.cpuMs - cpuBefore[i]!.cpuMs)
    cpuPerWrite[p] = {
      writer: cpuMs[0]! / total,
      others: cpuMs.slice(1).reduce((x, y) => x + y, 0) / (agents.length - 1) / total,
      load: (own.user + own.system) / 1000 / total,
    }
    const xs = latencies[p]!
    const expected = (last - first + 1) * agents.length
    console.log(
      `${`${rate}/s`.padEnd(10)} ${String(total).padEnd(8)} ${ms(percentile(xs, 50)).padEnd(10)} ${ms(percentile(xs, 99)).padEnd(10)} ${ms(Math.max(...xs)).padEnd(10)} ${xs.length}/${expected}`,
    )
  }
  // Where the time goes: CPU per write (from /proc, so it counts every thread) and the PUT's latency.
  console.log(
    'rate       PUT p50    PUT p99    CPU per write: writing agent, each other agent, this load generator',
  )
  for (const [p, rate] of RATES.entries()) {
    const cpu = cpuPerWrite[p]!
    console.log(
      `${`${rate}/s`.padEnd(10)} ${ms(percentile(putMs[p]!, 50)).padEnd(10)} ${ms(percentile(putMs[p]!, 99)).padEnd(10)} ${cpu.writer.toFixed(2)} ms, ${cpu.others.toFixed(2)} ms, ${cpu.load.toFixed(2)} ms`,
    )
  }
  for (const close of closers) close()
}

async function idleWatchers(agent: AgentProcess): Promise<void> {
  const pid = agent.child.pid!
  await sleep(2000)
  const base = await usage(pid)
  const baseCpu = await idleCpu(pid, 30)
  const events: number[] = []
  const closers: Array<() => void> = []
  const t0 = now()
  for (let opened = 0; opened < WATCHERS; ) {
    const batch = Math.min(200, WATCHERS - opened)
    const index = opened
    closers.push(
      ...(await Promise.all(
        Array.from({ length: batch }, (_, k) =>
          openWatch(`${agent.url}/registry-svc/instances/watch?slug=${SLUG}`, (_data, at) => {
            events[index + k] = at
          }),
        ),
      )),
    )
    opened += batch
  }
  const openMs = now() - t0
  await waitUntil('every first event', () => events.filter((x) => x !== undefined).length === WATCHERS)
  await sleep(2000)
  const withWatchers = await usage(pid)
  const watchedCpu = await idleCpu(pid, 30)
  events.fill(0)
  const sent = now()
  await register(agent, 1_000_000)
  await waitUntil('the change on every stream', () => events.every((x) => x > 0), 60_000)
  const fanOut = events.map((x) => x - sent)
  console.log(`\n${WATCHERS} idle watchers on one agent (opened in ${(openMs / 1000).toFixed(1)} s)`)
  console.log(
    `RSS              ${(base.rss / 2 ** 20).toFixed(1)} MB → ${(withWatchers.rss / 2 ** 20).toFixed(1)} MB`,
  )
  console.log(`RSS per watcher  ${((withWatchers.rss - base.rss) / WATCHERS / 1024).toFixed(1)} KB`)
  console.log(
    `idle CPU         ${(baseCpu * 100).toFixed(2)}% → ${(watchedCpu * 100).toFixed(2)}% of one core`,
  )
  console.log(
    `fan-out of one change: first ${ms(Math.min(...fanOut))}, p50 ${ms(percentile(fanOut, 50))}, p99 ${ms(percentile(fanOut, 99))}, last ${ms(Math.max(...fanOut))}`,
  )
  for (const close of closers) close()
}

const agents: AgentProcess[] = []
try {
  agents.push(await startAgent(0, []))
  const started = await Promise.all(
    Array.from({ length: AGENTS - 1 }, (_, i) => startAgent(i + 1, [agents[0]!.multiaddr])),
  )
  agents.push(...started)
  await waitUntil('every agent sees every node', async () => {
    const counts = await Promise.all(
      agents.map(
        async (a) =>
          (JSON.parse(await call(`${a.url}/registry-svc/nodes`, 'POST', {})) as { nodes: unknown[] }).nodes
            .length,
      ),
    )
    return counts.every((n) => n === AGENTS)
  })
  await propagation(agents)
  if (WATCHERS > 0) await idleWatchers(agents[AGENTS - 1]!)
} finally {
  await Promise.all(agents.map(stopAgent))
  keepAlive.destroy()
}
