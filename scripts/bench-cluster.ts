/**
 * Cluster benchmark: N agents as separate processes on loopback.
 *
 *   node scripts/bench-cluster.ts [agents=10] [writes=300] [lateJoinerEntries=100000] [idleSeconds=30]
 *
 * Prints, for a stream of writes on one agent, the propagation latency to every other agent
 * (p50/p99/max); the idle gossip and liveness traffic per node (TCP bytes from `ss`, plus the UDP bytes of SWIM datagrams each agent counts), idle RSS per agent
 * and idle CPU of all agents together; and the anti-entropy time for a late joiner against a replica
 * of `lateJoinerEntries` entries. Agents are real (scripts/cluster-child.ts runs startAgent); the fork
 * channel only tells them when to write and reports when they see changes. Agents get the runtime
 * settings of the bin's shebang (src/cli/bin.ts); BENCH_NODE_FLAGS replaces its Node flags (A/B runs).
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const AGENTS = Number(process.argv[2] ?? 10)
const WRITES = Number(process.argv[3] ?? 300)
const LATE_ENTRIES = Number(process.argv[4] ?? 100_000)
const IDLE_SECONDS = Number(process.argv[5] ?? 30)
const WRITE_INTERVAL_MS = Number(process.argv[6] ?? 10)
const HEARTBEAT_MS = Number(process.env.BENCH_HEARTBEAT_MS ?? 2000)

interface Child {
  index: number
  process: ChildProcess
  pid: number
  nodeId: string
  multiaddr: string
  dir: string
  messages: Array<Record<string, unknown>>
}

type Stats = {
  pid: number
  digest: string
  peers: number
  rss: number
  cpu: { user: number; system: number }
  syncSessions: number
  gossipMessages: number
  nodesKnown: number
  alive: number
  beatBytes: number
  swimFrames: number
  swimBytes: number
  swimLargest: number
  datagramBytes: number
  connections: number
  gossipBytesPublished: number
  gossipPublished: number
  at: number
}

/** Figures of one run, printed as one JSON line at the end (scripts/bench-scale.ts reads it). */
const figures: Record<string, number> = { agents: AGENTS }

const now = () => performance.timeOrigin + performance.now()
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}
const median = (xs: number[]) => percentile(xs, 50)

const wrote = new Map<string, number>()
const seen = new Map<string, Map<number, number>>() // id → child index → time
const arrived = new Map<string, Map<number, number>>() // BENCH_ARRIVALS=1: when the gossip message arrived
const unreachable = new Map<string, Map<number, number>>() // node id → child index → when it called it unreachable

/**
 * The environment variables and Node flags the bin runs agents with, read from its shebang
 * (`#!/usr/bin/env -S NAME=value ... node --flag ...`), so the benchmark cannot drift from them.
 */
async function binRuntime(): Promise<{ env: Record<string, string>; flags: string[] }> {
  const bin = await readFile(new URL('../dist/p2p-registry.mjs', import.meta.url), 'utf8')
  const words = bin.slice(0, bin.indexOf('\n')).split(' ').slice(2) // after `#!/usr/bin/env -S`
  const node = words.indexOf('node')
  const env = Object.fromEntries(words.slice(0, node).map((w) => w.split('=') as [string, string]))
  return { env, flags: words.slice(node + 1) }
}
const RUNTIME = await binRuntime()
const NODE_FLAGS = process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? RUNTIME.flags

async function spawnAgent(index: number, peers: string[]): Promise<Child> {
  const dir = await mkdtemp(join(tmpdir(), `bench-agent-${index}-`))
  // The bundled child (npm run build), built like the bin, so agents run as deployed.
  const child = fork(new URL('../dist/cluster-child.mjs', import.meta.url).pathname, [], {
    // PROFILE_AGENT=i writes a CPU profile of agent i to ./profiles when it stops.
    execArgv: [
      ...NODE_FLAGS,
      ...(process.env.PROFILE_AGENT === String(index) ? ['--cpu-prof', '--cpu-prof-dir=profiles'] : []),
    ],
    env: {
      ...RUNTIME.env,
      ...process.env,
      OB_NODE_ID: `bench-${index}`,
      OB_SELF_URL: `http://127.0.0.1:${21000 + index}`,
      OB_DATA_DIR: dir,
      OB_P2P_LISTEN: '/ip4/127.0.0.1/tcp/0',
      OB_HTTP_ADDR: '127.0.0.1:0',
      OB_DNS_ADDR: '127.0.0.1:0',
      OB_PEERS: peers.join(','),
      OB_MDNS: 'false',
      OB_HEARTBEAT_MS: String(HEARTBEAT_MS),
      OB_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const record: Partial<Child> = { index, process: child, dir, messages: [] }
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`agent ${index} exited with ${code}`)))
    child.on('message', (message: Record<string, unknown>) => {
      if (message.type === 'seen') {
        for (const id of message.ids as string[]) {
          const byChild = seen.get(id) ?? new Map<number, number>()
          seen.set(id, byChild)
          if (!byChild.has(index)) byChild.set(index, message.at as number)
        }
        return
      }
      if (message.type === 'arrived') {
        for (const id of message.ids as string[]) {
          const byChild = arrived.get(id) ?? new Map<number, number>()
          arrived.set(id, byChild)
          if (!byChild.has(index)) byChild.set(index, message.at as number)
        }
        return
      }
      if (message.type === 'unreachable') {
        const byChild = unreachable.get(message.nodeId as string) ?? new Map<number, number>()
        unreachable.set(message.nodeId as string, byChild)
        if (!byChild.has(index)) byChild.set(index, message.at as number)
        return
      }
      if (message.type === 'wrote') {
        wrote.set(message.id as string, message.at as number)
        return
      }
      record.messages!.push(message)
      if (message.type === 'ready') {
        Object.assign(record, { pid: message.pid, nodeId: message.nodeId, multiaddr: message.multiaddr })
        resolve(record as Child)
      }
    })
  })
}

async function request(
  child: Child,
  message: Record<string, unknown>,
  reply: string,
): Promise<Record<string, unknown>> {
  const from = child.messages.length
  child.process.send(message)
  for (;;) {
    const found = child.messages.slice(from).find((m) => m.type === reply)
    if (found) {
      child.messages.length = 0
      return found
    }
    await sleep(5)
  }
}

const stats = (child: Child) =>
  request(child, { type: 'stats' }, 'stats') as Promise<unknown> as Promise<Stats>

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const start = performance.now()
  while (!(await check())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`)
    await sleep(20)
  }
  return performance.now() - start
}

/**
 * A process's memory from /proc/PID/smaps_rollup, bytes: `rss`; `pss`, which splits pages shared with
 * other processes (the Node binary's code, which every agent maps) between them; and `anon`, its
 * private anonymous memory (heaps, stacks).
 */
async function memoryOf(pid: number): Promise<{ rss: number; pss: number; anon: number }> {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8')
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN) * 1024
  return { rss: kb('Rss'), pss: kb('Pss'), anon: kb('Anonymous') }
}

/** TCP payload bytes sent by each pid, summed over its established sockets (from `ss`). */
function bytesSentByPid(pids: Set<number>): Map<number, number> {
  const out = new Map<number, number>()
  const text = execFileSync('ss', ['-tinpH', 'state', 'established'], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  })
  let pid: number | undefined
  for (const line of text.split('\n')) {
    if (line.length === 0) continue
    if (!/^\s/.test(line)) {
      const match = /pid=(\d+)/.exec(line)
      pid = match ? Number(match[1]) : undefined
      continue
    }
    const sent = /bytes_sent:(\d+)/.exec(line)
    if (pid !== undefined && pids.has(pid) && sent) out.set(pid, (out.get(pid) ?? 0) + Number(sent[1]))
  }
  return out
}

const children: Child[] = []
try {
  console.log(`cluster benchmark: ${AGENTS} agents (separate processes), heartbeat ${HEARTBEAT_MS} ms`)
  const first = await spawnAgent(0, [])
  children.push(first)
  children.push(
    ...(await Promise.all(
      Array.from({ length: AGENTS - 1 }, (_, i) => spawnAgent(i + 1, [first.multiaddr])),
    )),
  )
  const wantPeers = Math.min(AGENTS - 1, 8)
  const meshMs = await waitUntil('agents connected', 60_000, async () =>
    (await Promise.all(children.map(stats))).every((s) => s.peers >= wantPeers),
  )
  console.log(`connected: every agent has >= ${wantPeers} peers after ${Math.round(meshMs)} ms`)
  const lastUp = performance.now() - meshMs
  const membershipMs = await waitUntil('every node sees every node alive', 120_000, async () =>
    (await Promise.all(children.map(stats))).every((s) => s.nodesKnown === AGENTS && s.alive === AGENTS),
  )
  figures.membershipMs = performance.now() - lastUp
  console.log(
    `membership: every agent holds every node record and calls every node alive ${Math.round(figures.membershipMs)} ms after the last agent was up (${Math.round(membershipMs)} ms after connecting)`,
  )
  await sleep(3000) // let gossipsub meshes settle (GRAFT happens on its 1 s heartbeat)

  // Propagation: a stream of writes on agent 0, one every 10 ms.
  const pids = new Set(children.map((c) => c.pid))
  const sentDuring = async () => {
    const tcp = bytesSentByPid(pids)
    const udp = (await Promise.all(children.map(stats))).reduce((sum, s) => sum + s.datagramBytes, 0)
    return { bytes: [...tcp.values()].reduce((a, b) => a + b, 0) + udp, at: performance.now() }
  }
  const writesSent0 = await sentDuring()
  await request(first, { type: 'write', count: WRITES, intervalMs: WRITE_INTERVAL_MS }, 'write-done')
  const others = children.slice(1).map((c) => c.index)
  await waitUntil('every write seen everywhere', 10_000, async () =>
    [...wrote.keys()].every((id) => others.every((i) => seen.get(id)?.has(i))),
  ).catch((err: Error) => console.log(`  warning: ${err.message}`))
  const writesSent1 = await sentDuring()
  const latencies: number[] = []
  let missing = 0
  for (const [id, at] of wrote) {
    for (const i of others) {
      const t = seen.get(id)?.get(i)
      if (t === undefined) missing++
      else latencies.push(t - at)
    }
  }
  if (arrived.size > 0) {
    const toArrive: number[] = []
    const toMerge: number[] = []
    for (const [id, at] of wrote) {
      for (const i of others) {
        const a = arrived.get(id)?.get(i)
        const m = seen.get(id)?.get(i)
        if (a !== undefined) toArrive.push(a - at)
        if (a !== undefined && m !== undefined) toMerge.push(m - a)
      }
    }
    console.log(
      `  message arrival: p50 ${median(toArrive).toFixed(1)} ms, p99 ${percentile(toArrive, 99).toFixed(1)} ms; ` +
        `arrival to merged: p50 ${median(toMerge).toFixed(1)} ms, p99 ${percentile(toMerge, 99).toFixed(1)} ms`,
    )
  }
  const worstPerWrite = [...wrote].map(([id, at]) =>
    Math.max(...others.map((i) => (seen.get(id)?.get(i) ?? Number.NaN) - at)),
  )
  figures.propagationP50Ms = median(latencies)
  figures.propagationP99Ms = percentile(latencies, 99)
  figures.propagationAllP99Ms = percentile(worstPerWrite, 99)
  const writer = await stats(first)
  figures.gossipMessageBytes = writer.gossipBytesPublished / Math.max(1, writer.gossipPublished)
  console.log(
    `propagation of ${wrote.size} writes to ${others.length} agents: p50 ${median(latencies).toFixed(1)} ms, ` +
      `p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms; ` +
      `to all agents (slowest receiver per write): p50 ${median(worstPerWrite).toFixed(1)} ms, p99 ${percentile(worstPerWrite, 99).toFixed(1)} ms` +
      (missing > 0 ? `; ${missing} deliveries missing` : ''),
  )

  // Idle: traffic, CPU and memory over IDLE_SECONDS with no writes.
  await sleep(5000)
  const bytes0 = bytesSentByPid(pids)
  const stats0 = await Promise.all(children.map(stats))
  await sleep(IDLE_SECONDS * 1000)
  const bytes1 = bytesSentByPid(pids)
  const stats1 = await Promise.all(children.map(stats))
  const seconds = (stats1[0]!.at - stats0[0]!.at) / 1000
  // TCP payload (libp2p connections) plus UDP payload (SWIM datagrams) sent by each agent.
  const rates = children.map(
    (c, i) =>
      ((bytes1.get(c.pid) ?? 0) -
        (bytes0.get(c.pid) ?? 0) +
        stats1[i]!.datagramBytes -
        stats0[i]!.datagramBytes) /
      seconds,
  )
  const cpuSeconds = stats1.reduce((sum, s, i) => {
    const before = stats0[i]!.cpu
    return sum + (s.cpu.user - before.user + s.cpu.system - before.system) / 1e6
  }, 0)
  const during = (key: 'syncSessions' | 'gossipMessages' | 'swimFrames' | 'swimBytes') =>
    stats1.reduce((sum, s, i) => sum + s[key] - stats0[i]![key], 0)
  console.log(
    `idle ${Math.round(seconds)} s: ${during('syncSessions')} anti-entropy sessions (both ends counted), ` +
      `${during('gossipMessages')} gossip messages received, all agents together`,
  )
  figures.idleBytesPerNodePerS = median(rates)
  figures.connectionsMedian = median(stats1.map((s) => s.connections))
  figures.connectionsMax = Math.max(...stats1.map((s) => s.connections))
  // What the writes cost the whole cluster, less what it sends idle over as long: bytes per change,
  // and in copies of the gossip message per node (1: each node got the change once, nothing more).
  const idleTotal = rates.reduce((a, b) => a + b, 0)
  const writesSeconds = (writesSent1.at - writesSent0.at) / 1000
  figures.clusterBytesPerChange = (writesSent1.bytes - writesSent0.bytes - idleTotal * writesSeconds) / WRITES
  figures.copiesPerNodePerChange = figures.clusterBytesPerChange / AGENTS / figures.gossipMessageBytes
  console.log(
    `writes: ${(figures.clusterBytesPerChange / 1024).toFixed(1)} KB sent cluster-wide per change (TCP and UDP, idle traffic subtracted), ` +
      `${figures.copiesPerNodePerChange.toFixed(2)} times the gossip message per node`,
  )
  console.log(
    `libp2p connections per agent, idle: median ${figures.connectionsMedian}, max ${figures.connectionsMax}`,
  )
  figures.idleCpuPerNodePct = (100 * cpuSeconds) / seconds / AGENTS
  figures.beatBytes = median(stats1.map((s) => s.beatBytes))
  figures.swimFramesPerNodePerS = during('swimFrames') / seconds / AGENTS
  figures.swimFrameBytes = during('swimBytes') / Math.max(1, during('swimFrames'))
  figures.swimLargestBytes = Math.max(...stats1.map((s) => s.swimLargest))
  console.log(
    `beat: ${figures.beatBytes} bytes (median over agents; 0: no beats sent); SWIM: ${figures.swimFramesPerNodePerS.toFixed(1)} frames per node per s, ` +
      `${figures.swimFrameBytes.toFixed(0)} bytes each on average, largest ${figures.swimLargestBytes}; gossip message: ${figures.gossipMessageBytes.toFixed(0)} bytes of payload on average (the writer's)`,
  )
  const memory = await Promise.all(children.map((c) => memoryOf(c.pid)))
  const mb = (xs: number[]) => `${(median(xs) / 2 ** 20).toFixed(0)} MB`
  console.log(
    `idle memory per agent (median): RSS ${mb(memory.map((m) => m.rss))}, PSS ${mb(memory.map((m) => m.pss))} ` +
      `(shared pages such as the Node binary split between the agents), private anonymous ${mb(memory.map((m) => m.anon))}`,
  )
  console.log(
    `idle ${Math.round(seconds)} s: traffic sent per node median ${(median(rates) / 1024).toFixed(2)} KB/s ` +
      `(max ${(Math.max(...rates) / 1024).toFixed(2)} KB/s); CPU of all ${AGENTS} agents ${((100 * cpuSeconds) / seconds).toFixed(1)}% of one core; ` +
      `RSS per agent median ${(median(stats1.map((s) => s.rss)) / 2 ** 20).toFixed(0)} MB (max ${(Math.max(...stats1.map((s) => s.rss)) / 2 ** 20).toFixed(0)} MB)`,
  )

  // kill -9 of one agent: when each other agent calls it unreachable.
  const victim = children[children.length - 1]!
  // Live nodes flagged unreachable before this (false positives: nothing was down), then only what
  // comes after the kill counts.
  figures.falseUnreachable = [...unreachable.values()].reduce((n, byChild) => n + byChild.size, 0)
  unreachable.clear()
  const killedAt = now()
  victim.process.kill('SIGKILL')
  const watchers = children.filter((c) => c !== victim).map((c) => c.index)
  await waitUntil('every agent flags the killed one', 60_000, async () =>
    watchers.every((i) => unreachable.get(victim.nodeId)?.has(i)),
  ).catch((err: Error) => console.log(`  warning: ${err.message}`))
  const detection = watchers.map((i) => (unreachable.get(victim.nodeId)?.get(i) ?? Number.NaN) - killedAt)
  figures.detectionMedianMs = median(detection)
  figures.detectionMaxMs = Math.max(...detection)
  console.log(
    `kill -9 of ${victim.nodeId}: unreachable on the ${watchers.length} others after median ${Math.round(figures.detectionMedianMs)} ms, worst ${Math.round(figures.detectionMaxMs)} ms; before it, ${figures.falseUnreachable} (agent, live node) pairs had been flagged unreachable`,
  )

  // Late joiner: a seed agent alone loads LATE_ENTRIES entries; then a new agent with an empty replica
  // joins with it as its seed and pulls them (apart from the cluster above, so nothing else competes).
  if (LATE_ENTRIES > 0) {
    const seed = await spawnAgent(AGENTS, [])
    children.push(seed)
    await request(seed, { type: 'bulk', count: LATE_ENTRIES, ts: Date.now() - 1000 }, 'bulk-done')
    const started = performance.now()
    const joiner = await spawnAgent(AGENTS + 1, [seed.multiaddr])
    children.push(joiner)
    const readyMs = performance.now() - started
    // Converged: both replicas equal (each now also holds the other's node record).
    const syncMs = await waitUntil('late joiner converges', 120_000, async () => {
      const [a, b] = await Promise.all([stats(seed), stats(joiner)])
      return a.digest === b.digest
    })
    console.log(
      `late joiner with ${LATE_ENTRIES.toLocaleString('en-US')} entries: converged ${Math.round(syncMs)} ms after its agent was up ` +
        `(process start to up: ${Math.round(readyMs)} ms)`,
    )
  }
  if (process.env.BENCH_JSON === '1') console.log(`FIGURES ${JSON.stringify(figures)}`)
} finally {
  await Promise.all(
    children.map(async (c) => {
      if (c.process.connected) c.process.send({ type: 'stop' })
      await Promise.race([new Promise((resolve) => c.process.once('exit', resolve)), sleep(5000)])
      c.process.kill('SIGKILL')
      await rm(c.dir, { recursive: true, force: true })
    }),
  )
}
