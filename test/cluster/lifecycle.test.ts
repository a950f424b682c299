/**
 * The instance lifecycle on a 5-host namespace cluster (scripts/cluster): one host cut off from four
 * (self-preservation on the lone side, reaping on the other, everything alive back after the heal),
 * and a host killed for good (its instances and record reaped everywhere). Needs root, `ip` and
 * `iptables` (CI runs as root); skipped with the reason in its name otherwise.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { waitFor } from '../support/wait.ts'
import { NsCluster, skipReason } from './ns-cluster.ts'

const HEARTBEAT_MS = 500
/** Unreachable after 6 silent beats (3 s), then reaped 4 s after the last word. */
const REAP_AFTER_MS = 4_000
const reason = await skipReason()
if (reason !== undefined) console.warn(`[lifecycle] namespace cluster lifecycle tests skipped: ${reason}`)
const log = (msg: string): void => console.log(`[lifecycle] ${msg}`)

describe.skipIf(reason !== undefined)(
  `instance lifecycle on a 5-host namespace cluster${reason ? ` (skipped: ${reason})` : ''}`,
  () => {
    let cluster: NsCluster

    beforeAll(async () => {
      cluster = await NsCluster.start({
        size: 5,
        heartbeatMs: HEARTBEAT_MS,
        env: { OB_NODE_REAP_AFTER_MS: String(REAP_AFTER_MS), OB_PROBE_INTERVAL_MS: '500' },
      })
    }, 300_000)

    afterAll(async () => {
      await cluster?.stop()
    }, 60_000)

    beforeEach(async (ctx) => {
      ctx.onTestFailed(() => cluster.markFailed())
      await cluster.restore(30_000)
    }, 45_000)

    /** Two instances per host, each owned by its host and checked there (its own agent's port: Healthy). */
    const registerOn = async (hosts: number[], slug: string): Promise<string[]> => {
      const ids: string[] = []
      for (const h of hosts) {
        for (const n of [0, 1]) {
          const id = `${slug}-${h}-${n}`
          const r = await cluster.put(h, { id, url: `${cluster.url(h)}/${id}`, slug })
          expect(r.status).toBe(201)
          ids.push(id)
        }
      }
      return ids
    }
    const listed = async (host: number, slug: string) =>
      (await cluster.instances(host, { slug }, 2_000))?.map((i) => i.id).sort()

    it('one host cut off from four: the lone host preserves everything, the four reap it, and after the heal every live instance is back', async () => {
      const slug = 'cut'
      const ids = (await registerOn(cluster.hosts, slug)).sort()
      await waitFor(
        'all ten instances Healthy on every host',
        async () => {
          const lists = await Promise.all(cluster.hosts.map((h) => cluster.instances(h, { slug }, 2_000)))
          return lists.every((l) => l?.length === 10 && l.every((i) => i.status === 'Healthy'))
        },
        { timeoutMs: 20_000, everyMs: 200 },
      )
      const lone = 5
      const four = [1, 2, 3, 4]
      const lonesIds = ids.filter((id) => id.startsWith(`${slug}-${lone}-`))
      await cluster.partition(four, [lone])
      const cutAt = Date.now()
      await waitFor(
        'the lone host in self-preservation, the four not',
        async () => {
          const views = await Promise.all(cluster.hosts.map((h) => cluster.health(h)))
          return views.every((v, i) => v?.selfPreservation === (cluster.hosts[i] === lone))
        },
        { timeoutMs: 15_000, everyMs: 100 },
      )
      log(`self-preservation on the lone host ${Date.now() - cutAt} ms after the cut`)
      await waitFor(
        'the four to reap the lone host: its instances and its record',
        async () => {
          const views = await Promise.all(four.map((h) => listed(h, slug)))
          const nodes = await Promise.all(four.map((h) => cluster.nodes(h)))
          return (
            views.every((v) => v !== undefined && v.length === 8 && !v.some((id) => lonesIds.includes(id))) &&
            nodes.every((n) => n !== undefined && !n.some((node) => node.id === cluster.nodeId(lone)))
          )
        },
        { timeoutMs: 20_000, everyMs: 100 },
      )
      log(
        `the four reaped the lone host ${Date.now() - cutAt} ms after the cut (OB_NODE_REAP_AFTER_MS ${REAP_AFTER_MS})`,
      )
      // The lone host has seen the four silent for longer than the reap time too, and deleted nothing.
      expect(await listed(lone, slug)).toEqual(ids)
      expect((await cluster.nodes(lone))?.length).toBe(5)

      await cluster.heal()
      await waitFor(
        'after the heal: every instance back on every host, Healthy, the lone host out of self-preservation',
        async () => {
          const lists = await Promise.all(cluster.hosts.map((h) => cluster.instances(h, { slug }, 2_000)))
          const views = await Promise.all(cluster.hosts.map((h) => cluster.health(h)))
          return (
            lists.every((l) => l?.length === 10 && l.every((i) => i.status === 'Healthy')) &&
            views.every((v) => v?.selfPreservation === false)
          )
        },
        { timeoutMs: 30_000, everyMs: 200 },
      )
      await cluster.waitConverged(cluster.hosts, 30_000)
      for (const h of cluster.hosts) expect((await cluster.nodes(h))?.length).toBe(5)
    }, 120_000)

    it('a host killed for good: its instances and its record are reaped on every other host', async () => {
      const slug = 'gone'
      const victim = 4
      const ids = await registerOn([1, victim], slug)
      await waitFor('the four instances on every host', async () => {
        const lists = await Promise.all(cluster.hosts.map((h) => listed(h, slug)))
        return lists.every((l) => l?.length === 4)
      })
      await cluster.kill(victim)
      const killedAt = Date.now()
      const others = cluster.hosts.filter((h) => h !== victim)
      await waitFor(
        'the victim reaped everywhere',
        async () => {
          const lists = await Promise.all(others.map((h) => listed(h, slug)))
          const nodes = await Promise.all(others.map((h) => cluster.nodes(h)))
          return (
            lists.every((l) => l?.join() === ids.filter((id) => id.startsWith(`${slug}-1-`)).join()) &&
            nodes.every((n) => n !== undefined && !n.some((node) => node.id === cluster.nodeId(victim)))
          )
        },
        { timeoutMs: 20_000, everyMs: 100 },
      )
      const tookMs = Date.now() - killedAt
      log(
        `a killed host reaped everywhere ${tookMs} ms after the kill (OB_NODE_REAP_AFTER_MS ${REAP_AFTER_MS})`,
      )
      // Counted from its last beat, which came up to a heartbeat before the kill.
      expect(tookMs).toBeGreaterThanOrEqual(REAP_AFTER_MS - HEARTBEAT_MS)
      await cluster.waitConverged(others, 20_000)
    }, 90_000)
  },
)
