/**
 * Drives a network-namespace cluster made by `scripts/cluster` (5 hosts at 198.18.0.1..N, one agent
 * each) from a test in the root namespace, and talks to every agent through its HTTP API.
 *
 * Every cluster test file shares one address range (198.18.0.0/24 is fixed in the script), so a file
 * takes a machine-wide lock before `up` and releases it after `down`: vitest runs files in parallel,
 * the files wait for each other. The cluster has its own prefix and a fixed state dir, so a crashed
 * earlier run is torn down before the next `up`, and a developer's cluster (prefix `p2preg`) is never
 * touched; when that one is up, it holds 198.18.0.254 and these tests fail saying so.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cp, mkdir, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import stringify from 'safe-stable-stringify'
import { waitFor } from '../support/wait.ts'

const run = promisify(execFile)

const ROOT = new URL('../..', import.meta.url).pathname
const SCRIPT = join(ROOT, 'scripts/cluster')
const SUBNET = '198.18.0'
const HTTP_PORT = 11337
/** Namespaces `p2pft-1..N`, links `p2pft-h1..`, bridge `p2pft-br`. */
export const PREFIX = 'p2pft'
const STATE = join(tmpdir(), `p2p-registry-${PREFIX}`)
const LOCK = join(tmpdir(), 'p2p-registry-nscluster.lock')
/** Logs of clusters whose tests failed are copied here before `down` removes the state dir. */
export const KEPT_LOGS = join(tmpdir(), 'p2p-registry-fault-logs')

export type Liveness = 'alive' | 'suspect' | 'unreachable'

export interface Health {
  status: string
  nodeId: string
  /** Digest of the whole replica (absent from agents built before it was added to /healthz). */
  digest?: string
  definitions: number
  instances: number
  nodes: number
  tombstones: number
  selfPreservation?: boolean
}

export interface InstanceView {
  id: string
  url: string
  slug: string
  deploymentId?: string
  nodeUrl?: string
  tags?: string[]
  status: string
  [field: string]: unknown
}

export interface NodeView {
  id: string
  url: string
  liveness?: Liveness
  [field: string]: unknown
}

/** What became of one request: an HTTP status, or a transport error (timeout, reset, refused). */
export type Outcome<T> = { status: number; body: T } | { status: 0; error: string }

/**
 * Why the namespace cluster tests cannot run here, or undefined when they can. CI runs as root with
 * `ip` and `iptables`; elsewhere the tests are skipped with this reason in their name.
 */
export async function skipReason(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'needs Linux network namespaces'
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, iptables); CI runs as root'
  for (const [tool, args] of [
    ['ip', ['-V']],
    ['iptables', ['-V']],
  ] as const) {
    const ok = await run(tool, [...args]).then(
      () => true,
      () => false,
    )
    if (!ok) return `\`${tool}\` is missing (Debian: apt-get install iproute2 iptables)`
  }
  const built = await stat(join(ROOT, 'dist/p2p-registry.mjs')).then(
    () => true,
    () => false,
  )
  if (!built) return 'dist/ is missing: run npm run build'
  return undefined
}

export interface NsClusterInit {
  /** @default 5 */
  size?: number
  /** OB_HEARTBEAT_MS of every agent. @default 500 */
  heartbeatMs?: number
  /** More OB_* settings for every agent. */
  env?: Record<string, string>
  /** How long to wait for another test file's cluster to be torn down. @default 240 s */
  lockTimeoutMs?: number
}

/** A namespace cluster owned by one test file. */
export class NsCluster {
  readonly size: number
  readonly heartbeatMs: number
  readonly #env: NodeJS.ProcessEnv
  /** Hosts whose agent the test killed or stopped and did not restart. */
  readonly #down = new Set<number>()
  #failed = false

  private constructor(init: NsClusterInit) {
    this.size = init.size ?? 5
    this.heartbeatMs = init.heartbeatMs ?? 500
    const env: NodeJS.ProcessEnv = {}
    // OB_* of the test process would reach the agents: only ours do.
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OB_')) env[k] = v
    this.#env = {
      ...env,
      CLUSTER_PREFIX: PREFIX,
      CLUSTER_STATE: STATE,
      OB_HEARTBEAT_MS: String(this.heartbeatMs),
      // debug: liveness transitions and anti-entropy rounds are in the logs kept after a failure.
      OB_LOG_LEVEL: process.env.FAULT_LOG_LEVEL ?? 'debug',
      ...init.env,
    }
  }

  /**
   * Takes the lock, clears what a crashed earlier run may have left, brings `size` hosts up and waits
   * until every agent answers and sees every other one alive.
   */
  static async start(init: NsClusterInit = {}): Promise<NsCluster> {
    const cluster = new NsCluster(init)
    await acquireLock(init.lockTimeoutMs ?? 240_000)
    try {
      await cluster.#clearLeftovers()
      await assertSubnetFree()
      await cluster.script('up', String(cluster.size))
      await cluster.waitReady(30_000)
      return cluster
    } catch (err) {
      cluster.markFailed()
      await cluster.stop()
      throw err
    }
  }

  get hosts(): number[] {
    return Array.from({ length: this.size }, (_, i) => i + 1)
  }

  /** Hosts whose agent is running (as far as the test knows: it did not kill or stop them). */
  get upHosts(): number[] {
    return this.hosts.filter((h) => !this.#down.has(h))
  }

  url(host: number): string {
    return `http://${SUBNET}.${host}:${HTTP_PORT}`
  }

  nodeId(host: number): string {
    return `agent-${host}`
  }

  logPath(host: number): string {
    return join(STATE, `agent-${host}`, 'agent.log')
  }

  /** Marks the run as failed: `stop` then keeps the agents' logs. */
  markFailed(): void {
    this.#failed = true
  }

  /** Runs `scripts/cluster ARGS` for this cluster; throws with its stderr when it fails. */
  async script(...args: string[]): Promise<string> {
    try {
      const { stdout } = await run(SCRIPT, args, { env: this.#env, timeout: 60_000 })
      return stdout
    } catch (err) {
      const e = err as { stderr?: string; message: string }
      throw new Error(`scripts/cluster ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`)
    }
  }

  async partition(...groups: number[][]): Promise<void> {
    await this.script('partition', ...groups.map((g) => g.join(',')))
  }

  /** Removes every partition, loss and rate limit. */
  async heal(): Promise<void> {
    await this.script('heal')
  }

  async loss(host: number, percent: number): Promise<void> {
    await this.script('loss', String(host), String(percent))
  }

  /** kill -9 of the host's agent. */
  async kill(host: number): Promise<void> {
    await this.script('kill', String(host))
    this.#down.add(host)
  }

  /** SIGTERM of the host's agent; returns once it has exited. */
  async stopGracefully(host: number): Promise<void> {
    await this.script('stop', String(host))
    this.#down.add(host)
  }

  /**
   * Starts the host's agent again on its data dir; resolves once it listens on its HTTP port (the
   * last step of its start-up). Checked inside the host's namespace, not over its link: a restart
   * under heavy packet loss (a randomized test can stack 30% and 13%) is up long before a request
   * from outside gets through.
   */
  async restart(host: number, timeoutMs = 20_000): Promise<void> {
    await this.script('restart', String(host))
    await waitFor(
      `agent-${host} to listen after its restart`,
      async () =>
        (await this.script('exec', String(host), 'ss', '-Hltn', `sport = :${HTTP_PORT}`)).trim() !== '',
      { timeoutMs, everyMs: 100 },
    )
    this.#down.delete(host)
  }

  /** Heals every fault and restarts every agent the test took down, then waits until all is well. */
  async restore(timeoutMs = 30_000): Promise<void> {
    await this.heal()
    for (const host of [...this.#down]) await this.restart(host)
    await this.waitReady(timeoutMs)
  }

  /** Tears the cluster down (idempotent), keeping the logs first when a test failed; releases the lock. */
  async stop(): Promise<void> {
    try {
      if (this.#failed) await this.keepLogs()
      await this.script('down')
    } finally {
      await releaseLock()
    }
  }

  /** Copies every agent's log out of the state dir (which `down` removes); returns where. */
  async keepLogs(): Promise<string | undefined> {
    const to = join(KEPT_LOGS, new Date().toISOString().replaceAll(':', '-'))
    try {
      await mkdir(to, { recursive: true })
      for (const host of this.hosts) await cp(this.logPath(host), join(to, `agent-${host}.log`))
      console.error(`[ns-cluster] agent logs kept in ${to}`)
      return to
    } catch {
      return undefined
    }
  }

  // --- HTTP API ---

  async request<T>(
    host: number,
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = 5_000,
  ): Promise<Outcome<T>> {
    try {
      const res = await fetch(`${this.url(host)}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      })
      const text = await res.text()
      return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T }
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } }
      return { status: 0, error: e.cause?.code ?? e.cause?.message ?? e.name ?? String(err) }
    }
  }

  /** `PUT /registry-svc/instance`; 201 means durable on that host. */
  put(host: number, registration: Record<string, unknown>, timeoutMs = 5_000) {
    return this.request<{ instance: InstanceView }>(
      host,
      'PUT',
      '/registry-svc/instance',
      registration,
      timeoutMs,
    )
  }

  /** `DELETE /registry-svc/instance/{id}`: 204 deleted, 404 unknown there. */
  remove(host: number, id: string, timeoutMs = 5_000) {
    return this.request<undefined>(
      host,
      'DELETE',
      `/registry-svc/instance/${encodeURIComponent(id)}`,
      undefined,
      timeoutMs,
    )
  }

  async health(host: number, timeoutMs = 2_000): Promise<Health | undefined> {
    const r = await this.request<Health>(host, 'GET', '/healthz', undefined, timeoutMs)
    return r.status === 200 ? r.body : undefined
  }

  /** Instances as the host answers them (ordered by id), or undefined when it does not answer. */
  async instances(host: number, query: Record<string, string> = {}, timeoutMs = 5_000) {
    const qs = new URLSearchParams(query).toString()
    const r = await this.request<{ instances: InstanceView[] }>(
      host,
      'GET',
      `/registry-svc/instances${qs ? `?${qs}` : ''}`,
      undefined,
      timeoutMs,
    )
    return r.status === 200 ? r.body.instances : undefined
  }

  async nodes(host: number, timeoutMs = 2_000): Promise<NodeView[] | undefined> {
    const r = await this.request<{ nodes: NodeView[] }>(host, 'POST', '/registry-svc/nodes', {}, timeoutMs)
    return r.status === 200 ? r.body.nodes : undefined
  }

  /** What `host` says about every node: id → liveness. Undefined when it does not answer. */
  async livenessView(host: number, timeoutMs = 2_000): Promise<Map<string, Liveness> | undefined> {
    const nodes = await this.nodes(host, timeoutMs)
    if (nodes === undefined) return undefined
    return new Map(nodes.map((n) => [n.id, n.liveness ?? 'alive']))
  }

  /**
   * Waits until every running agent answers and calls every running agent `alive` (the hosts the
   * test took down are ignored).
   */
  async waitReady(timeoutMs: number): Promise<void> {
    const up = this.upHosts
    let last = ''
    await waitFor(
      `every agent of ${up.join(',')} to answer and see the others alive`,
      async () => {
        const views = await Promise.all(up.map((h) => this.livenessView(h)))
        const problems: string[] = []
        for (const [i, view] of views.entries()) {
          if (view === undefined) {
            problems.push(`agent-${up[i]} does not answer`)
            continue
          }
          for (const other of up)
            if (view.get(this.nodeId(other)) !== 'alive')
              problems.push(
                `agent-${up[i]} sees agent-${other} ${view.get(this.nodeId(other)) ?? 'not at all'}`,
              )
        }
        last = problems.join('; ')
        return problems.length === 0
      },
      { timeoutMs, everyMs: 100 },
    ).catch(async (err: Error) => {
      const tails = await Promise.all(
        up.map(async (h) => `agent-${h}: ${(await this.logTail(h, 2)).join(' | ')}`),
      )
      throw new Error(`${err.message}: ${last}\nlast log lines:\n${tails.join('\n')}`)
    })
  }

  /** The last `lines` lines of a host's agent log. */
  async logTail(host: number, lines: number): Promise<string[]> {
    const text = await readFile(this.logPath(host), 'utf8').catch(() => '')
    return text.trimEnd().split('\n').slice(-lines)
  }

  /**
   * The state of a host's replica as one string: the digest of /healthz when the agent exposes one,
   * else a hash of the full instance listing (which covers what these tests write).
   */
  async stateOf(host: number): Promise<string | undefined> {
    const health = await this.health(host)
    if (health === undefined) return undefined
    if (typeof health.digest === 'string') return health.digest
    const all = await this.instances(host)
    return all === undefined ? undefined : createHash('sha256').update(JSON.stringify(all)).digest('hex')
  }

  /**
   * Waits until `hosts` hold identical replicas, checking every 50 ms. Returns how long that took from
   * the call, and the common state.
   */
  async waitConverged(
    hosts: number[] = this.upHosts,
    timeoutMs = 30_000,
  ): Promise<{ ms: number; state: string }> {
    const started = Date.now()
    let last: (string | undefined)[] = []
    try {
      const state = await waitFor(
        `identical replicas on hosts ${hosts.join(',')}`,
        async () => {
          last = await Promise.all(hosts.map((h) => this.stateOf(h)))
          const first = last[0]
          return first !== undefined && last.every((s) => s === first) ? first : undefined
        },
        { timeoutMs, everyMs: 50 },
      )
      return { ms: Date.now() - started, state }
    } catch (err) {
      const states = last.map((s, i) => `agent-${hosts[i]}: ${s?.slice(0, 12) ?? 'no answer'}`).join(', ')
      throw new Error(`${(err as Error).message}; last states ${states}`)
    }
  }

  /**
   * Waits until `hosts` answer the same instance listing for `query` (compared as full JSON with sorted
   * keys: an agent restarted on its data dir answers the fields of the instances it loaded from disk
   * in another order, see the report of these tests), and returns it.
   */
  async waitSameListing(
    query: Record<string, string>,
    hosts: number[] = this.upHosts,
    timeoutMs = 10_000,
  ): Promise<InstanceView[]> {
    let lists: (InstanceView[] | undefined)[] = []
    try {
      return await waitFor(
        `identical listings of ${JSON.stringify(query)} on hosts ${hosts.join(',')}`,
        async () => {
          lists = await Promise.all(hosts.map((h) => this.instances(h, query)))
          const json = lists.map((l) => (l === undefined ? undefined : canonical(l)))
          return json[0] !== undefined && json.every((j) => j === json[0]) ? lists[0] : undefined
        },
        { timeoutMs, everyMs: 100 },
      )
    } catch (err) {
      const sizes = lists.map((l, i) => `agent-${hosts[i]}: ${l?.length ?? 'no answer'}`).join(', ')
      throw new Error(`${(err as Error).message}; instance counts ${sizes}${firstDifference(lists, hosts)}`)
    }
  }

  /** Lines of a host's log whose message matches `pattern` (pino JSON lines), for evidence. */
  async logLines(host: number, pattern: RegExp): Promise<string[]> {
    const text = await readFile(this.logPath(host), 'utf8').catch(() => '')
    return text.split('\n').filter((line) => pattern.test(line))
  }

  async #clearLeftovers(): Promise<void> {
    // `down` works from the state dir: give it the size of what may be there, and forget pid files
    // that no longer name one of this cluster's agents (a reused pid must never be killed).
    await mkdir(STATE, { recursive: true })
    const sizeFile = join(STATE, 'size')
    const size = Number(await readFile(sizeFile, 'utf8').catch(() => '0')) || 0
    for (const entry of await readdir(STATE)) {
      if (!/^agent-\d+$/.test(entry)) continue
      const pidFile = join(STATE, entry, 'pid')
      const pid = Number(await readFile(pidFile, 'utf8').catch(() => '0'))
      if (!(pid > 0 && (await isOurAgent(pid, join(STATE, entry, 'data')))))
        await rm(pidFile, { force: true })
    }
    await writeFile(sizeFile, String(Math.max(size, this.size, 8)))
    await this.script('down')
  }
}

/** JSON with object keys sorted at every level. */
export function canonical(value: unknown): string {
  return stringify(value) as string
}

/** The first instance on which two hosts' listings differ, for a failure message. */
function firstDifference(lists: (InstanceView[] | undefined)[], hosts: number[]): string {
  const base = new Map((lists[0] ?? []).map((i) => [i.id, canonical(i)]))
  for (const [n, list] of lists.entries()) {
    if (n === 0 || list === undefined) continue
    const ids = new Set([...base.keys(), ...list.map((i) => i.id)])
    const other = new Map(list.map((i) => [i.id, canonical(i)]))
    for (const id of [...ids].sort()) {
      if (base.get(id) !== other.get(id))
        return `; first difference, ${id}: agent-${hosts[0]} ${base.get(id) ?? 'absent'}, agent-${hosts[n]} ${other.get(id) ?? 'absent'}`
    }
  }
  return ''
}

/** Whether `pid` is an agent of this cluster: its environment names our data dir. */
async function isOurAgent(pid: number, dataDir: string): Promise<boolean> {
  const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '')
  return environ.split('\0').includes(`OB_DATA_DIR=${dataDir}`)
}

/** Fails clearly when another bridge (a developer's `scripts/cluster up`) holds the cluster subnet. */
async function assertSubnetFree(): Promise<void> {
  const { stdout } = await run('ip', ['-o', '-4', 'addr', 'show'])
  const holder = stdout.split('\n').find((line) => line.includes(` ${SUBNET}.`))
  if (holder !== undefined) {
    throw new Error(
      `${SUBNET}.0/24 is already in use (${holder.trim().split(/\s+/)[1]}): another namespace cluster is up; ` +
        'stop it (CLUSTER_PREFIX=... scripts/cluster down) before running the fault tests',
    )
  }
}

/** A machine-wide lock (a directory holding the owner's pid); a dead owner's lock is taken over. */
async function acquireLock(timeoutMs: number): Promise<void> {
  await waitFor(
    `the namespace cluster lock ${LOCK} (held by another cluster test file)`,
    async () => {
      try {
        await mkdir(LOCK)
        await writeFile(join(LOCK, 'pid'), String(process.pid))
        return true
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        const owner = Number(await readFile(join(LOCK, 'pid'), 'utf8').catch(() => '0'))
        const ownerAlive = owner > 0 && isAlive(owner)
        // A lock without a pid yet is being taken right now; one older than a minute was abandoned.
        const age =
          Date.now() -
          (await stat(LOCK).then(
            (s) => s.mtimeMs,
            () => Date.now(),
          ))
        if (!ownerAlive && (owner > 0 || age > 60_000)) await rm(LOCK, { recursive: true, force: true })
        return false
      }
    },
    { timeoutMs, everyMs: 250 },
  )
}

async function releaseLock(): Promise<void> {
  const owner = Number(await readFile(join(LOCK, 'pid'), 'utf8').catch(() => '0'))
  if (owner !== process.pid) return
  await rm(join(LOCK, 'pid'), { force: true })
  await rmdir(LOCK).catch(() => undefined)
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Runs `task` over `items` with at most `concurrency` at a time. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      await task(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
}

/** Resolves once `Date.now()` has moved past `ms`: orders two writes on the shared wall clock. */
export async function clockPast(ms: number): Promise<void> {
  await waitFor(`the wall clock to pass ${ms}`, () => Date.now() > ms, { timeoutMs: 1_000, everyMs: 2 })
}
