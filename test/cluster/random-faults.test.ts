/**
 * Jepsen-style randomized fault test on a 5-host namespace cluster. A seeded nemesis mixes partitions,
 * heals, kill -9 and graceful stops with restarts, and packet loss, while clients put and delete
 * instances on random live hosts; every operation is recorded with its start and end time. After a
 * bounded time everything is healed and restarted, and the test checks:
 *
 * - every host holds an identical replica (digest) and answers the same listing;
 * - every key's final state is one a last-writer-wins register can reach: the value of an operation
 *   (or absence, for a delete) that no acknowledged operation on the key started after it ended. With
 *   hybrid logical clocks over the one wall clock of this machine, an operation that starts after
 *   another was acknowledged gets a higher version, so it must win; operations that overlap in time
 *   may win either way, but every host must agree. So an acknowledged write that nothing later
 *   overwrote or deleted is present with its value, and an acknowledged delete is never undone by an
 *   older write.
 *
 * FAULT_SEED=<n> replays the nemesis' and the clients' choices (the interleaving still depends on
 * timing); the seed is in the test's name and in every failure message. FAULT_DURATION_MS sets how
 * long the faults last (default 40 s).
 *
 * The instances are registered on the agent the write goes to, so its probe writes their status too,
 * concurrently with the clients' puts and deletes: status writes must never bring back a delete.
 * FAULT_PROBES=0 registers them with a node URL no agent has instead, so every write is a client's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { seeded as prng } from '../support/random.ts'
import { waitFor } from '../support/wait.ts'
import { type InstanceView, NsCluster, skipReason } from './ns-cluster.ts'

const HEARTBEAT_MS = 500
const SEED = process.env.FAULT_SEED ? Number(process.env.FAULT_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0
const CHAOS_MS = Number(process.env.FAULT_DURATION_MS ?? 40_000)
const WORKERS = 3
const HOT_KEYS = 24
const SLUG = 'chaos'
/** With FAULT_PROBES=0, a node URL no agent has (TEST-NET-1): instances on it are probed by nobody. */
const NODE_URL = process.env.FAULT_PROBES === '0' ? { nodeUrl: 'http://127.0.2.1:11337' } : {}

const reason = await skipReason()
if (reason !== undefined) console.warn(`[random-faults] namespace cluster fault tests skipped: ${reason}`)
const log = (msg: string): void => console.log(`[random-faults seed=${SEED}] ${msg}`)

type Random = () => number
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!
const between = (random: Random, lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1))

/**
 * One client operation. `ok`: acknowledged (201/204); `unknown`: no answer (timeout, reset: it may
 * have been applied, at any time after `start`); `noop`: a delete answered 404 (nothing written);
 * `failed`: refused before anything was written (connection refused, 503 while the agent shuts down).
 */
interface Op {
  seq: number
  key: string
  kind: 'put' | 'delete'
  /** The deploymentId a put writes. */
  value?: string
  host: number
  start: number
  end: number
  outcome: 'ok' | 'unknown' | 'noop' | 'failed'
  detail?: string
}

const describeOp = (op: Op): string =>
  `#${op.seq} ${op.kind}${op.value ? `(${op.value})` : ''} on agent-${op.host} [${op.start}..${op.outcome === 'unknown' ? '?' : op.end}] ${op.outcome}${op.detail ? ` ${op.detail}` : ''}`

/**
 * What may be the final state of a key after `ops`: the value of each operation (undefined for a
 * delete) not dominated by an acknowledged operation that started after it ended, plus absence when
 * no operation was acknowledged (nothing need have happened).
 */
function candidates(ops: Op[]): { allowed: Set<string | undefined>; determined: boolean } {
  const effective = ops.filter((op) => op.outcome === 'ok' || op.outcome === 'unknown')
  const acked = effective.filter((op) => op.outcome === 'ok')
  const open = effective.filter(
    (x) => !acked.some((y) => x.outcome === 'ok' && y.start > x.end), // unknown ops are never dominated
  )
  const allowed = new Set<string | undefined>(open.map((op) => (op.kind === 'put' ? op.value : undefined)))
  if (acked.length === 0) allowed.add(undefined)
  return { allowed, determined: allowed.size === 1 }
}

describe.skipIf(reason !== undefined)(
  `randomized faults on a 5-host namespace cluster${reason ? ` (skipped: ${reason})` : ''}`,
  () => {
    let cluster: NsCluster

    beforeAll(async () => {
      cluster = await NsCluster.start({ size: 5, heartbeatMs: HEARTBEAT_MS })
    }, 300_000)

    afterAll(async () => {
      await cluster?.stop()
    }, 60_000)

    it(
      `keeps LWW invariants through random partitions, kills, restarts and loss (FAULT_SEED=${SEED})`,
      async (ctx) => {
        const nemesisLog: string[] = []
        ctx.onTestFailed(() => {
          cluster.markFailed()
          console.error(
            `[random-faults] FAILED with FAULT_SEED=${SEED} (rerun: FAULT_SEED=${SEED} npx vitest run test/cluster/random-faults.test.ts)\n` +
              `nemesis: ${nemesisLog.join('\n  ')}`,
          )
        })
        const fail = (msg: string): Error => new Error(`[FAULT_SEED=${SEED}] ${msg}`)
        const t0 = Date.now()
        const at = (): string => `+${((Date.now() - t0) / 1000).toFixed(1)}s`

        const ops: Op[] = []
        let seq = 0
        let onceKeys = 0
        const createdOnce: string[] = []
        let running = true

        const urlOf = (key: string): string => {
          let h = 0
          for (const ch of key) h = (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0
          return `http://127.77.${(h >>> 8) & 255}.${h & 255}:${1024 + (h % 60000)}`
        }

        const client = async (worker: number): Promise<void> => {
          const random = prng(SEED + 1 + worker)
          while (running) {
            const hosts = cluster.upHosts
            if (hosts.length === 0) {
              await waitFor('a live host', () => !running || cluster.upHosts.length > 0, {
                timeoutMs: 30_000,
              })
              continue
            }
            const host = pick(random, hosts)
            let key: string
            let kind: 'put' | 'delete'
            const r = random()
            if (r < 0.45) [key, kind] = [`hot-${between(random, 0, HOT_KEYS - 1)}`, 'put']
            else if (r < 0.65) [key, kind] = [`hot-${between(random, 0, HOT_KEYS - 1)}`, 'delete']
            else if (r < 0.9 || createdOnce.length === 0) [key, kind] = [`once-${onceKeys++}`, 'put']
            else [key, kind] = [pick(random, createdOnce), 'delete']
            const op: Op = { seq: seq++, key, kind, host, start: Date.now(), end: 0, outcome: 'unknown' }
            if (kind === 'put') op.value = `op${op.seq}`
            ops.push(op)
            const res =
              kind === 'put'
                ? await cluster.put(
                    host,
                    { id: key, url: urlOf(key), slug: SLUG, deploymentId: op.value, ...NODE_URL },
                    3_000,
                  )
                : await cluster.remove(host, key, 3_000)
            op.end = Date.now()
            if ('error' in res) {
              // Refused: nothing was sent, nothing written. Anything else (reset, timeout): maybe written.
              op.outcome = res.error === 'ECONNREFUSED' ? 'failed' : 'unknown'
              op.detail = res.error
            } else if (res.status === (kind === 'put' ? 201 : 204)) {
              op.outcome = 'ok'
              if (key.startsWith('once-') && kind === 'put') createdOnce.push(key)
            } else if (kind === 'delete' && res.status === 404) {
              op.outcome = 'noop'
            } else if (res.status === 503) {
              op.outcome = 'failed'
              op.detail = '503'
            } else {
              running = false
              throw fail(`unexpected answer to ${describeOp(op)}: ${res.status} ${JSON.stringify(res.body)}`)
            }
          }
        }

        const nemesis = async (): Promise<void> => {
          const random = prng(SEED)
          let lossy = 0
          while (Date.now() - t0 < CHAOS_MS) {
            // The next fault comes 1-3 s after the last one (bounded pacing, not a wait for an outcome).
            const next = Date.now() + between(random, 1_000, 3_000)
            await waitFor('the next fault', () => Date.now() >= next, { timeoutMs: 5_000, everyMs: 50 })
            const down = cluster.hosts.filter((h) => !cluster.upHosts.includes(h))
            const r = random()
            if (r < 0.25) {
              const shuffled = [...cluster.hosts].sort(() => random() - 0.5)
              const cut = between(random, 1, cluster.size - 1)
              const [a, b] = [shuffled.slice(0, cut).sort(), shuffled.slice(cut).sort()]
              await cluster.heal()
              await cluster.partition(a, b)
              lossy = 0
              nemesisLog.push(`${at()} partition ${a.join(',')} | ${b.join(',')}`)
            } else if (r < 0.4) {
              await cluster.heal()
              lossy = 0
              nemesisLog.push(`${at()} heal`)
            } else if (r < 0.6 && down.length < 2) {
              const victim = pick(random, cluster.upHosts)
              if (random() < 0.7) {
                await cluster.kill(victim)
                nemesisLog.push(`${at()} kill -9 agent-${victim}`)
              } else {
                await cluster.stopGracefully(victim)
                nemesisLog.push(`${at()} stop agent-${victim}`)
              }
            } else if (r < 0.8 && down.length > 0) {
              const host = pick(random, down)
              await cluster.restart(host)
              nemesisLog.push(`${at()} restart agent-${host}`)
            } else if (lossy < 3) {
              const host = pick(random, cluster.hosts)
              const pct = between(random, 10, 30)
              await cluster.loss(host, pct)
              lossy++
              nemesisLog.push(`${at()} loss ${pct}% on agent-${host}`)
            }
          }
        }

        const clients = Array.from({ length: WORKERS }, (_, w) => client(w))
        try {
          await nemesis()
        } finally {
          running = false
          await Promise.allSettled(clients)
        }
        await Promise.all(clients) // an unexpected answer fails the test here
        const chaosMs = Date.now() - t0
        const counts = { ok: 0, unknown: 0, noop: 0, failed: 0 }
        for (const op of ops) counts[op.outcome]++
        log(
          `faults for ${chaosMs} ms: ${nemesisLog.length} faults; ${ops.length} operations ${JSON.stringify(counts)}`,
        )
        log(`nemesis: ${nemesisLog.join('; ')}`)

        const restoreStart = Date.now()
        await cluster.restore(60_000)
        const { ms } = await cluster.waitConverged(cluster.hosts, 60_000)
        log(
          `healed and restarted: all agents alive everywhere after ${Date.now() - restoreStart - ms} ms, ` +
            `identical digests ${ms} ms later`,
        )
        const listing = await cluster.waitSameListing({ slug: SLUG }, cluster.hosts, 20_000)
        const final = new Map<string, InstanceView>(listing.map((i) => [i.id, i]))

        const byKey = new Map<string, Op[]>()
        for (const op of ops) byKey.set(op.key, [...(byKey.get(op.key) ?? []), op])
        const violations: string[] = []
        let determined = 0
        for (const [key, history] of byKey) {
          const { allowed, determined: isDetermined } = candidates(history)
          if (isDetermined) determined++
          const got = final.get(key)
          const value = got === undefined ? undefined : got.deploymentId
          if (got !== undefined && got.deploymentId === undefined)
            violations.push(`${key}: present without a value`)
          if (!allowed.has(value)) {
            const shown = [...allowed].map((v) => v ?? 'absent').join(', ')
            const tail = history.slice(-8).map(describeOp).join('\n      ')
            violations.push(
              `${key}: final ${value ?? 'absent'}, allowed {${shown}}; last operations:\n      ${tail}`,
            )
          }
        }
        for (const id of final.keys())
          if (!byKey.has(id)) violations.push(`${id}: present but never written by this test`)
        log(
          `checked ${byKey.size} keys (${determined} with exactly one allowed final state), ` +
            `${final.size} instances present, ${violations.length} violations`,
        )
        if (violations.length > 0)
          throw fail(
            `${violations.length} keys in a state no LWW history allows:\n  ${violations.slice(0, 10).join('\n  ')}`,
          )
        expect(determined).toBeGreaterThan(0)
      },
      CHAOS_MS + 180_000,
    )
  },
)
