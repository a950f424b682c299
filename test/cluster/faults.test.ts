/**
 * Fault tests on a 5-host network-namespace cluster (scripts/cluster): convergence, a partition with
 * conflicting writes and deletes, kill -9 during writes, packet loss, and a host killed for good.
 * Needs root, `ip` and `iptables` (CI runs as root); skipped with the reason in its name otherwise.
 * Measured figures are printed with the `[faults]` prefix.
 */
import { type AddressInfo, createServer } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { waitFor } from '../support/wait.ts'
import { clockPast, type InstanceView, NsCluster, pool, skipReason } from './ns-cluster.ts'

/** The default (`OB_HEARTBEAT_MS`): SWIM probes every 500 ms, as in production. */
const HEARTBEAT_MS = 2000
/**
 * How long liveness is watched under loss: 60 probe periods. `FAULT_LOSS_WATCH_MS=300000` makes it the
 * 5 minutes of issue 15 (README, Fault tests, has the command).
 */
const LOSS_WATCH_MS = Number(process.env.FAULT_LOSS_WATCH_MS ?? 30_000)
/** Issue 15's worst-case detection target, plus room for a busy CI machine. */
const DETECTION_BOUND_MS = 4000 + 1000
const reason = await skipReason()
if (reason !== undefined) console.warn(`[faults] namespace cluster fault tests skipped: ${reason}`)

const log = (msg: string): void => console.log(`[faults] ${msg}`)

/**
 * A node URL no agent has (TEST-NET-1). Instances registered with it are probed by nobody: their
 * only writes are the test's, so the order of writes alone decides the LWW winner. Without it the
 * agent a registration goes to owns the instance and writes its probed status (src/liveness).
 */
const UNOWNED = 'http://127.0.2.1:11337'

/** An instance registration with an explicit id, so two writes of one key are one entity. */
function reg(
  id: string,
  slug: string,
  value: string,
  urlIndex: number,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    id,
    url: `http://127.${(urlIndex >> 16) & 255}.${(urlIndex >> 8) & 255}.${urlIndex & 255}:8080`,
    slug,
    deploymentId: value,
    ...extra,
  }
}

const byId = (list: InstanceView[]): Map<string, InstanceView> => new Map(list.map((i) => [i.id, i]))

describe.skipIf(reason !== undefined)(
  `fault tests on a 5-host namespace cluster${reason ? ` (skipped: ${reason})` : ''}`,
  () => {
    let cluster: NsCluster
    let testStarted = 0

    beforeAll(async () => {
      const started = Date.now()
      cluster = await NsCluster.start({ size: 5, heartbeatMs: HEARTBEAT_MS })
      log(`cluster of 5 up and ready in ${Date.now() - started} ms`)
    }, 300_000)

    afterAll(async () => {
      await cluster?.stop()
    }, 60_000)

    beforeEach(async (ctx) => {
      // Keep the agents' logs when a test fails (not for the failure an `it.fails` test expects).
      ctx.onTestFailed(() => {
        if (!ctx.task.fails) cluster.markFailed()
      })
      await cluster.restore(30_000)
      testStarted = Date.now()
    }, 45_000)

    const took = (what: string): void => log(`${what}: test body took ${Date.now() - testStarted} ms`)

    it('converges: 1,000 writes spread over all hosts give identical replicas everywhere', async () => {
      const ids: string[] = []
      const writeStart = Date.now()
      let lastAck = 0
      await pool(
        Array.from({ length: 1000 }, (_, n) => n),
        10,
        async (n) => {
          const id = `conv-${String(n).padStart(4, '0')}`
          const host = (n % 5) + 1
          // A transport hiccup is retried: the test is about convergence, and a PUT by id is idempotent.
          for (let attempt = 1; ; attempt++) {
            const r = await cluster.put(host, reg(id, 'conv', `v${n}`, 0x010000 + n, { nodeUrl: UNOWNED }))
            if (r.status === 201) break
            if (attempt === 3) throw new Error(`PUT ${id} on agent-${host}: ${JSON.stringify(r)}`)
          }
          ids.push(id)
          lastAck = Date.now()
        },
      )
      const writesMs = lastAck - writeStart
      const { ms } = await cluster.waitConverged(cluster.hosts, 30_000)
      log(
        `convergence: 1,000 writes over 5 hosts took ${writesMs} ms; identical digests on all 5 hosts ` +
          `${ms} ms after the last acknowledgement (${Date.now() - writeStart} ms after the first write)`,
      )
      const listing = await cluster.waitSameListing({ slug: 'conv' })
      expect(listing.map((i) => i.id)).toEqual(ids.sort())
      took('convergence')
    }, 90_000)

    it('heals a partition {1,2} | {3,4,5}: the later write wins everywhere, no deleted entity comes back', async () => {
      const slug = 'part'
      const keys = [
        'a-then-b',
        'b-then-a',
        'del-on-a',
        'del-on-b',
        'put-b-then-del-a',
        'del-a-then-put-b',
        'del-b-then-put-a',
      ]
      // Shared history: every key exists everywhere before the partition.
      for (const [i, key] of keys.entries()) {
        const r = await cluster.put(1 + (i % 5), reg(key, slug, 'before', 0x020000 + i, { nodeUrl: UNOWNED }))
        expect(r.status).toBe(201)
      }
      await cluster.waitSameListing({ slug })
      expect((await cluster.instances(5, { slug }))?.length).toBe(keys.length)

      await cluster.partition([1, 2], [3, 4, 5])
      const url = (key: string): number => 0x020000 + keys.indexOf(key)
      /** One acknowledged operation, then the wall clock moves past its acknowledgement. */
      const step = async (host: number, op: 'put' | 'delete', key: string, value = ''): Promise<void> => {
        const r =
          op === 'put'
            ? await cluster.put(host, reg(key, slug, value, url(key), { nodeUrl: UNOWNED }))
            : await cluster.remove(host, key)
        expect(r.status, `${op} ${key} on agent-${host}: ${JSON.stringify(r)}`).toBe(op === 'put' ? 201 : 204)
        await clockPast(Date.now())
      }
      // Earlier operations, each side on its own copy.
      await step(1, 'put', 'a-then-b', 'A')
      await step(3, 'put', 'b-then-a', 'B')
      await step(2, 'delete', 'del-on-a')
      await step(4, 'delete', 'del-on-b')
      await step(5, 'put', 'put-b-then-del-a', 'B')
      await step(1, 'delete', 'del-a-then-put-b')
      await step(3, 'delete', 'del-b-then-put-a')
      // Later operations on the other side: these win.
      await step(4, 'put', 'a-then-b', 'B-later')
      await step(2, 'put', 'b-then-a', 'A-later')
      await step(1, 'delete', 'put-b-then-del-a')
      await step(5, 'put', 'del-a-then-put-b', 'B-later')
      await step(2, 'put', 'del-b-then-put-a', 'A-later')

      // New entities on each side, a few of them deleted again on the same side.
      const sides = { a: [1, 2], b: [3, 4, 5] }
      const fresh = new Map<string, string>()
      for (const [side, hosts] of Object.entries(sides)) {
        await pool(
          Array.from({ length: 40 }, (_, n) => n),
          4,
          async (n) => {
            const id = `new-${side}-${n}`
            const r = await cluster.put(
              hosts[n % hosts.length]!,
              reg(id, slug, side, 0x021000 + n + (side === 'a' ? 0 : 500), { nodeUrl: UNOWNED }),
            )
            expect(r.status).toBe(201)
            fresh.set(id, side)
          },
        )
        for (let n = 0; n < 40; n += 5) {
          const id = `new-${side}-${n}`
          // Deleted through another host of the side, once gossip brought it there (404 until then,
          // which changes nothing).
          await waitFor(
            `${id} deleted on host ${hosts[(n + 1) % hosts.length]}`,
            async () => (await cluster.remove(hosts[(n + 1) % hosts.length]!, id)).status === 204,
          )
          fresh.delete(id)
        }
      }
      // The partition holds: each side answers only its own writes.
      const a = byId((await cluster.waitSameListing({ slug }, [1, 2]))!)
      const b = byId((await cluster.waitSameListing({ slug }, [3, 4, 5]))!)
      expect(a.has('new-b-1') || b.has('new-a-1'), 'writes crossed the partition').toBe(false)
      expect(a.get('a-then-b')?.deploymentId).toBe('A')
      expect(b.get('a-then-b')?.deploymentId).toBe('B-later')

      await cluster.heal()
      const healed = Date.now()
      const { ms } = await cluster.waitConverged(cluster.hosts, 30_000)
      log(`partition: identical digests on all 5 hosts ${ms} ms after heal`)
      const all = byId(await cluster.waitSameListing({ slug }))
      const value = (key: string): string | undefined => all.get(key)?.deploymentId
      expect(value('a-then-b')).toBe('B-later')
      expect(value('b-then-a')).toBe('A-later')
      expect(all.has('del-on-a'), 'deleted on side A, back after heal').toBe(false)
      expect(all.has('del-on-b'), 'deleted on side B, back after heal').toBe(false)
      expect(all.has('put-b-then-del-a'), 'put on B then deleted on A, back after heal').toBe(false)
      expect(value('del-a-then-put-b')).toBe('B-later')
      expect(value('del-b-then-put-a')).toBe('A-later')
      const expectedFresh = [...fresh.keys()].sort()
      expect([...all.keys()].filter((id) => id.startsWith('new-')).sort()).toEqual(expectedFresh)
      await cluster.waitReady(20_000)
      log(`partition: every host sees every other alive ${Date.now() - healed} ms after heal`)
      took('partition')
    }, 90_000)

    it('keeps every write a host acknowledged before kill -9, once it is restarted', async () => {
      const slug = 'kill'
      const acked = new Set<string>()
      const failed: string[] = []
      let n = 0
      let stop = false
      const writer = async (): Promise<void> => {
        while (!stop) {
          const i = n++
          const id = `kill-${i}`
          const r = await cluster.put(3, reg(id, slug, `v${i}`, 0x030000 + i), 3_000)
          if (r.status === 201) acked.add(id)
          else failed.push(`${id}: ${'error' in r ? r.error : r.status}`)
          if (r.status !== 201 && r.status !== 0) throw new Error(`PUT ${id}: ${JSON.stringify(r)}`)
        }
      }
      const writers = Array.from({ length: 4 }, writer)
      await waitFor('150 acknowledged writes on agent-3', () => acked.size >= 150, { timeoutMs: 20_000 })
      await cluster.kill(3)
      const ackedAtKill = acked.size
      // Every request in flight at the kill ends (refused, reset or timed out) before the loop stops.
      await waitFor('a write to fail after the kill', () => failed.length > 0, { timeoutMs: 5_000 })
      stop = true
      await Promise.all(writers)
      log(
        `kill -9: ${acked.size} writes acknowledged by agent-3 (${acked.size - ackedAtKill} answered after the ` +
          `kill command returned), ${failed.length} failed (first: ${failed[0]})`,
      )

      const restarted = Date.now()
      await cluster.restart(3)
      const answering = Date.now() - restarted
      // Durable on agent-3 itself (possibly before any peer gave anything back).
      const own = (await cluster.instances(3, { slug })) ?? []
      const ownIds = new Set(own.map((i) => i.id))
      expect(
        [...acked].filter((id) => !ownIds.has(id)),
        'acknowledged writes lost by agent-3',
      ).toEqual([])
      log(`kill -9: agent-3 answers again ${answering} ms after restart, with all its acknowledged writes`)

      await cluster.waitReady(20_000)
      const { ms } = await cluster.waitConverged(cluster.hosts, 30_000)
      log(
        `kill -9: identical digests on all 5 hosts ${Date.now() - restarted} ms after restart (${ms} ms after ready)`,
      )
      const listing = await cluster.waitSameListing({ slug })
      // Same content everywhere (checked above, keys sorted); note when the bytes differ, and where, since
      // every entity is stored in one fixed field order and answers should be byte-identical.
      const raw = await Promise.all(
        cluster.hosts.map(async (h) => JSON.stringify(await cluster.instances(h, { slug }))),
      )
      for (const [i, host] of cluster.hosts.entries()) {
        if (raw[i] === raw[0]) continue
        let at = 0
        while (raw[i]![at] === raw[0]![at]) at++
        log(
          `kill -9: note: agent-${host} answers the same instances with other bytes than agent-${cluster.hosts[0]}, from char ${at}: ${raw[i]!.slice(Math.max(0, at - 80), at + 80)} | agent-${cluster.hosts[0]}: ${raw[0]!.slice(Math.max(0, at - 80), at + 80)}`,
        )
      }
      const ids = new Set(listing.map((i) => i.id))
      expect(
        [...acked].filter((id) => !ids.has(id)),
        'acknowledged writes missing cluster-wide',
      ).toEqual([])
      took('kill -9')
    }, 90_000)

    it(
      'converges with 20% packet loss on one host, and never flags a node unreachable',
      async () => {
        const slug = 'loss'
        const lossy = 4
        await cluster.loss(lossy, 20)
        const lossStart = Date.now()
        const unreachable: string[] = []
        let suspects = 0
        let samples = 0
        let unanswered = 0
        let monitoring = true
        const monitor = (async () => {
          while (monitoring) {
            const round = Date.now()
            const views = await Promise.all(cluster.hosts.map((h) => cluster.livenessView(h, 3_000)))
            for (const [i, view] of views.entries()) {
              if (view === undefined) {
                unanswered++
                continue
              }
              samples++
              for (const [node, state] of view) {
                if (state === 'suspect') suspects++
                if (state === 'unreachable')
                  unreachable.push(`agent-${i + 1} saw ${node} unreachable at +${Date.now() - lossStart} ms`)
              }
            }
            // One round per 200 ms at most: SWIM probes every 500 ms.
            const next = round + 200
            await waitFor('the next sampling round', () => !monitoring || Date.now() >= next, { everyMs: 20 })
          }
        })()
        try {
          const writeStart = Date.now()
          await pool(
            Array.from({ length: 200 }, (_, n) => n),
            5,
            async (n) => {
              const host = (n % 5) + 1
              for (let attempt = 1; ; attempt++) {
                const r = await cluster.put(host, reg(`loss-${n}`, slug, `v${n}`, 0x040000 + n), 5_000)
                if (r.status === 201) break
                // Lost packets can time a request out on the lossy host; PUT by id is idempotent.
                if (attempt === 3) throw new Error(`PUT loss-${n} on agent-${host}: ${JSON.stringify(r)}`)
              }
            },
          )
          const writesMs = Date.now() - writeStart
          const { ms } = await cluster.waitConverged(cluster.hosts, 30_000)
          log(
            `20% loss on agent-${lossy}: 200 writes took ${writesMs} ms; ` +
              `identical digests on all 5 hosts ${ms} ms after the last acknowledgement`,
          )
          const listing = await cluster.waitSameListing({ slug })
          expect(listing).toHaveLength(200)
          // Watch liveness under loss for 60 probe periods (probes, ping-reqs and refutations get lost).
          await waitFor('the watch under loss', () => Date.now() - lossStart >= LOSS_WATCH_MS, {
            timeoutMs: LOSS_WATCH_MS + 5_000,
            everyMs: 50,
          })
        } finally {
          monitoring = false
          await monitor
        }
        log(
          `20% loss on agent-${lossy}: ${samples} liveness views sampled over ${Date.now() - lossStart} ms ` +
            `(${unanswered} unanswered), ${suspects} transient 'suspect' entries, ${unreachable.length} 'unreachable'`,
        )
        expect(samples).toBeGreaterThan(50)
        expect(unreachable, 'a live node was flagged unreachable').toEqual([])
        took('packet loss')
      },
      LOSS_WATCH_MS + 60_000,
    )

    // A status write is ordered right after the registration it describes (src/replica/lww.ts), so a
    // probe result written on a replica that has not seen a delete cannot bring the instance back.
    it('does not bring back an instance deleted elsewhere when its owner writes a probed status on a stale replica', async () => {
      // An instance owned by agent-1 (registered there) whose address is a TCP port of this test
      // process: agent-1's probe finds it Healthy while the port accepts, Unreachable once it is closed.
      const server = createServer((socket) => socket.destroy())
      await new Promise<void>((resolve) => server.listen(0, '198.18.0.254', resolve))
      const port = (server.address() as AddressInfo).port
      try {
        const slug = 'probed'
        const r = await cluster.put(1, {
          id: 'probed-0',
          url: `http://198.18.0.254:${port}/`,
          slug,
          deploymentId: 'v1',
        })
        expect(r.status).toBe(201)
        await waitFor(
          'every host to answer probed-0 as Healthy (probed by its owner, agent-1)',
          async () => {
            const lists = await Promise.all(cluster.hosts.map((h) => cluster.instances(h, { slug })))
            return lists.every((l) => l?.[0]?.status === 'Healthy')
          },
          { timeoutMs: 15_000, everyMs: 100 },
        )
        await cluster.partition([1, 2], [3, 4, 5])
        // Deleted on the side without its owner...
        expect((await cluster.remove(3, 'probed-0')).status).toBe(204)
        await clockPast(Date.now())
        // ...then the instance goes down: its owner, which has not heard of the delete, writes the new status.
        await new Promise<void>((resolve) => server.close(() => resolve()))
        const statusWritten = await waitFor(
          'agent-1 to write the status it probes for probed-0',
          async () => {
            const l = await cluster.instances(1, { slug })
            return l?.[0] !== undefined && l[0].status !== 'Healthy' ? l[0].status : undefined
          },
          { timeoutMs: 15_000, everyMs: 100 },
        )
        log(`probe: agent-1 wrote status ${statusWritten} for probed-0 after it was deleted on agent-3`)
        await cluster.heal()
        await cluster.waitConverged(cluster.hosts, 20_000)
        const after = await cluster.waitSameListing({ slug })
        expect(
          after.map((i) => `${i.id} ${i.status} (nodeUrl ${i.nodeUrl})`),
          'the delete (made before the status write, on a replica the owner could not reach) must win',
        ).toEqual([])
      } finally {
        if (server.listening) server.close()
      }
      took('probe on a stale replica')
    }, 60_000)

    it('flags a host killed for good unreachable everywhere within the detection time, and its instances', async () => {
      const slug = 'dead'
      const victim = 5
      const victimId = cluster.nodeId(victim)
      // Instances on the victim carry its URL as nodeUrl (the agent's default), and an address its
      // probe finds Healthy (the victim agent's own HTTP port); a control instance likewise on agent-1.
      for (let n = 0; n < 3; n++) {
        const r = await cluster.put(victim, {
          id: `dead-${n}`,
          url: `${cluster.url(victim)}/dead-${n}`,
          slug,
        })
        expect(r.status).toBe(201)
        expect(r.status === 201 && r.body.instance.nodeUrl).toBe(cluster.url(victim))
      }
      expect((await cluster.put(1, { id: 'alive-0', url: `${cluster.url(1)}/alive-0`, slug })).status).toBe(
        201,
      )
      // Healthy everywhere first, so Unreachable below comes from the lookups, not from a probe.
      await waitFor(
        'every host to answer the four instances as probed Healthy by their owners',
        async () => {
          const lists = await Promise.all(cluster.hosts.map((h) => cluster.instances(h, { slug })))
          return lists.every((l) => l?.length === 4 && l.every((i) => i.status === 'Healthy'))
        },
        { timeoutMs: 15_000, everyMs: 100 },
      )

      const others = cluster.hosts.filter((h) => h !== victim)
      await cluster.kill(victim)
      const killedAt = Date.now()
      const detectedMs = new Map<number, number>()
      const boundMs = DETECTION_BOUND_MS
      await waitFor(
        `every other host to flag ${victimId} unreachable`,
        async () => {
          await Promise.all(
            others
              .filter((h) => !detectedMs.has(h))
              .map(async (h) => {
                const view = await cluster.livenessView(h, 1_000)
                if (view?.get(victimId) === 'unreachable') detectedMs.set(h, Date.now() - killedAt)
              }),
          )
          return detectedMs.size === others.length
        },
        { timeoutMs: boundMs + 5_000, everyMs: 25 },
      )
      const times = others.map((h) => `agent-${h}: ${detectedMs.get(h)} ms`).join(', ')
      log(
        `failure detection (SWIM at the default heartbeat, ${HEARTBEAT_MS} ms): ${victimId} flagged ` +
          `unreachable after ${times}; bound ${boundMs} ms`,
      )
      for (const h of others)
        expect(detectedMs.get(h), `detection time on agent-${h}`).toBeLessThanOrEqual(boundMs)

      for (const h of others) {
        const list = await waitFor(
          `agent-${h} to answer the victim's instances as Unreachable`,
          async () => {
            const l = await cluster.instances(h, { slug })
            return l?.filter((i) => i.id.startsWith('dead-')).every((i) => i.status === 'Unreachable')
              ? l
              : undefined
          },
          { timeoutMs: 2_000, everyMs: 50 },
        )
        expect(
          list.map((i) => [i.id, i.status]),
          `instances as agent-${h} answers them`,
        ).toEqual([
          ['alive-0', 'Healthy'],
          ['dead-0', 'Unreachable'],
          ['dead-1', 'Unreachable'],
          ['dead-2', 'Unreachable'],
        ])
        const onlyUnreachable = await cluster.instances(h, { slug, status: 'Unreachable' })
        expect(onlyUnreachable?.map((i) => i.id)).toEqual(['dead-0', 'dead-1', 'dead-2'])
      }
      took('host killed for good')
    }, 60_000)
  },
)
