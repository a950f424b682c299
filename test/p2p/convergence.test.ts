import { describe, expect, it } from 'vitest'
import { type Instance, instanceFromRegistration } from '../../src/model/index.ts'
import { startCluster, waitConverged } from '../support/cluster.ts'
import { waitFor } from '../support/wait.ts'

const register = (n: number, extra: Record<string, unknown> = {}): Instance =>
  instanceFromRegistration(
    { url: `http://127.3.${(n >> 8) & 255}.${n & 255}:8080`, slug: `svc-${n % 10}`, ...extra },
    { now: new Date() },
  )

describe('convergence', () => {
  it('brings a late joiner to the identical digest after 1,000 writes', async () => {
    const cluster = await startCluster(3)
    try {
      const writers = cluster.agents
      for (let n = 0; n < 1000; n++) await writers[n % 3]!.replica.put('instance', register(n))
      for (let n = 0; n < 1000; n += 7) await writers[n % 3]!.replica.remove('instance', register(n).id)
      await waitConverged(cluster.agents)
      const joiner = await cluster.add()
      const digest = await waitConverged(cluster.agents)
      expect(joiner.replica.digest()).toBe(digest)
      expect(joiner.replica.counts().instances).toBe(1000 - Math.ceil(1000 / 7))
    } finally {
      await cluster.stop()
    }
  })

  it('heals a partition: writes and deletes on both sides, the LWW winner everywhere, no deleted entity back', async () => {
    const cluster = await startCluster(3)
    try {
      const [a, b] = cluster.agents
      let c = cluster.agents[2]!
      // Shared history before the partition.
      for (let n = 0; n < 20; n++) await a!.replica.put('instance', register(n))
      await waitConverged(cluster.agents)

      // Partition: c restarts with another cluster key, so nobody can reach it and it reaches nobody.
      c = await c.restart({ clusterKey: 'island' })
      cluster.agents[2] = c

      // Majority side {a, b}: deletes, updates and new entities.
      await a!.replica.remove('instance', register(1).id) // c still holds the older put of 1
      await b!.replica.put('instance', register(2, { tags: ['majority'] }))
      await b!.replica.put('instance', register(100))
      // Minority side {c}: its own writes, some to the same keys.
      await c.replica.put('instance', register(3, { tags: ['minority'] }))
      await c.replica.remove('instance', register(4).id)
      await c.replica.put('instance', register(200))
      // Same key on both sides: the later write (c's, made after b's) wins everywhere.
      await b!.replica.put('instance', register(5, { tags: ['majority'] }))
      await c.replica.put('instance', register(5, { tags: ['minority'] }))
      expect(a!.replica.get('instance', register(200).id)).toBeUndefined()
      expect(c.replica.get('instance', register(100).id)).toBeUndefined()

      // Heal: c comes back with the cluster's (empty) key and its seed.
      c = await c.restart({ clusterKey: undefined })
      cluster.agents[2] = c
      await waitConverged(cluster.agents, 20_000)
      for (const agent of cluster.agents) {
        const get = (n: number) => agent.replica.get('instance', register(n).id)
        expect(get(1), 'deleted on the majority side stays deleted').toBeUndefined()
        expect(get(4), 'deleted on the minority side stays deleted').toBeUndefined()
        expect(get(2)?.tags).toEqual(['majority'])
        expect(get(3)?.tags).toEqual(['minority'])
        expect(get(5)?.tags).toEqual(['minority'])
        expect(get(100)).toBeDefined()
        expect(get(200)).toBeDefined()
      }
    } finally {
      await cluster.stop()
    }
  })

  it('keeps a restarted agent’s replica and catches it up on what it missed', async () => {
    const cluster = await startCluster(2)
    try {
      const [a] = cluster.agents
      let b = cluster.agents[1]!
      for (let n = 0; n < 50; n++) await a!.replica.put('instance', register(n))
      await waitConverged(cluster.agents)
      await b.stop()
      for (let n = 50; n < 80; n++) await a!.replica.put('instance', register(n))
      b = await b.restart()
      cluster.agents[1] = b
      // Its own replica is there at once, before any sync...
      expect(b.replica.counts().instances).toBeGreaterThanOrEqual(50)
      // ...and anti-entropy brings the rest.
      await waitConverged(cluster.agents)
      await waitFor('80 instances on the restarted agent', () => b.replica.counts().instances === 80)
    } finally {
      await cluster.stop()
    }
  })
})
