import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { instanceFromRegistration } from '../../src/model/index.ts'
import { CHANGES_TOPIC } from '../../src/model/wire.ts'
import { createP2PNode, type RegistryLibp2p } from '../../src/p2p/libp2p-node.ts'
import { seedOf, startCluster, type TestCluster, waitConverged } from '../support/cluster.ts'
import { forwardsTo } from '../support/gossip-mesh.ts'
import { waitFor } from '../support/wait.ts'

const register = (url: string, slug = 'user-svc', extra: Record<string, unknown> = {}) =>
  instanceFromRegistration({ url, slug, ...extra }, { now: new Date() })

describe('gossip between agents', () => {
  let cluster: TestCluster

  beforeAll(async () => {
    cluster = await startCluster(4)
    // Gossip only (anti-entropy is not what is tested here): wait until every agent is connected to
    // every other on the changes topic, so a publish from any agent reaches all.
    await waitFor('every agent hears every other', () => cluster.agents.every((a) => a.reach?.hearsAll))
  })

  afterAll(() => cluster.stop())

  it('forwards nothing in a full mesh: every agent hears each publisher first-hand', async () => {
    // Each agent is subscribed to the reach topic, so its peers leave it out when they forward.
    await waitFor('no agent forwards to any other', () =>
      cluster.agents.every((a) => forwardsTo(a.libp2p).size === 0),
    )
    const [a] = cluster.agents
    const instance = register('http://127.1.0.3:8080')
    const received = cluster.agents.map((x) => x.gossip.stats.messagesReceived)
    await a!.replica.put('instance', instance)
    await waitFor('instance on every agent by gossip', () =>
      cluster.agents.every((x) => x.replica.get('instance', instance.id)?.url === instance.url),
    )
    expect(cluster.agents.map((x, i) => x.gossip.stats.messagesReceived - received[i]!)).toEqual([0, 1, 1, 1])
  })

  it('spreads a write on one agent to all, and a delete removes it everywhere', async () => {
    const [a, b, c, d] = cluster.agents
    const instance = register('http://127.1.0.1:8080')
    await c!.replica.put('instance', instance)
    await waitFor('instance on every agent', () =>
      cluster.agents.every((x) => x.replica.get('instance', instance.id)?.url === instance.url),
    )
    expect(d!.replica.instances({ slug: 'user-svc' }).map((i) => i.id)).toContain(instance.id)

    await a!.replica.remove('instance', instance.id)
    await waitFor('instance gone everywhere', () =>
      cluster.agents.every((x) => x.replica.get('instance', instance.id) === undefined),
    )
    expect(b!.replica.entry(`instance/${instance.id}`)?.value).toBeNull()
    await waitConverged(cluster.agents)
  })

  it('converges concurrent writes of the same key to one winner on all agents', async () => {
    const url = 'http://127.1.0.2:8080'
    const writes = await Promise.all(
      cluster.agents.map((agent, i) =>
        agent.replica.put('instance', register(url, 'user-svc', { tags: [`writer-${i}`] })),
      ),
    )
    const winner = writes.reduce((best, w) =>
      w.version.ts > best.version.ts ||
      (w.version.ts === best.version.ts &&
        (w.version.c > best.version.c ||
          (w.version.c === best.version.c && w.version.node > best.version.node)))
        ? w
        : best,
    )
    const id = writes[0]!.id
    await waitFor('every agent holds the winning write', () =>
      cluster.agents.every(
        (x) => x.replica.get('instance', id)?.tags?.[0] === (winner.value as { tags: string[] }).tags[0],
      ),
    )
    await waitConverged(cluster.agents)
  })

  it('drops garbage from a peer on the topic, counts it, and changes nothing', async () => {
    const target = cluster.agents[1]!
    const before = cluster.agents.map((a) => a.replica.digest())
    const rejectedBefore = Object.values(target.gossip.stats.rejected).reduce((x, y) => x + y, 0)
    const rogue: RegistryLibp2p = await createP2PNode({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
    })
    try {
      rogue.services.pubsub.subscribe(CHANGES_TOPIC)
      await rogue.dial(target.libp2p.getMultiaddrs()[0]!)
      await waitFor(
        'rogue sees the agent subscribed',
        () => rogue.services.pubsub.getSubscribers(CHANGES_TOPIC).length > 0,
      )
      const future = { ...register('http://127.9.9.9:1'), id: 'future' }
      const bad = [
        new Uint8Array([0xff, 0x00, 0x13, 0x37]),
        new TextEncoder().encode('{"changes": "nope"}'),
        new TextEncoder().encode(
          JSON.stringify({
            changes: [{ kind: 'instance', id: 'x/y', version: { ts: 1, c: 0, node: 'n' }, value: null }],
          }),
        ),
        new TextEncoder().encode(
          JSON.stringify({
            changes: [
              {
                kind: 'instance',
                id: 'future',
                version: { ts: Date.now() + 3_600_000, c: 0, node: 'n' },
                value: future,
              },
            ],
          }),
        ),
        new TextEncoder().encode(
          JSON.stringify({
            changes: [
              {
                kind: 'instance',
                id: 'big',
                version: { ts: 1, c: 0, node: 'n' },
                value: { pad: 'x'.repeat(1_300_000) },
              },
            ],
          }),
        ),
      ]
      for (const data of bad) await rogue.services.pubsub.publish(CHANGES_TOPIC, data).catch(() => undefined)
      await waitFor('the agent rejected the garbage', () => {
        const rejected = Object.values(target.gossip.stats.rejected).reduce((x, y) => x + y, 0)
        return rejected - rejectedBefore >= 4
      })
      expect(target.gossip.stats.rejected.drift).toBeGreaterThanOrEqual(1)
      expect(target.gossip.stats.rejected['not-json']).toBeGreaterThanOrEqual(1)
      // Still alive and still gossiping: a real write after the garbage goes through.
      const after = register('http://127.1.0.3:8080')
      await cluster.agents[3]!.replica.put('instance', after)
      await waitFor('a later write still spreads', () =>
        cluster.agents.every((x) => x.replica.get('instance', after.id)),
      )
      expect(cluster.agents.every((a) => a.replica.get('instance', 'future') === undefined)).toBe(true)
      expect(before.length).toBe(4)
    } finally {
      await rogue.stop()
    }
  })
})

describe('private cluster', () => {
  it('never gives data to an agent with the wrong cluster key', async () => {
    const cluster = await startCluster(2, { clusterKey: 'right-key' })
    try {
      const outsider = await cluster.add({ clusterKey: 'wrong-key' })
      const instance = register('http://127.2.0.1:8080')
      await cluster.agents[0]!.replica.put('instance', instance)
      await waitFor('the member with the key receives the write', () =>
        cluster.agents[1]!.replica.get('instance', instance.id),
      )
      // The outsider's dial to the seed fails the handshake: it holds no connection at all.
      expect(outsider.libp2p.getConnections()).toEqual([])
      await expect(outsider.libp2p.dial(cluster.agents[0]!.libp2p.getMultiaddrs()[0]!)).rejects.toThrow()
      expect(outsider.replica.get('instance', instance.id)).toBeUndefined()
      expect(outsider.replica.counts().instances).toBe(0)
      expect(seedOf(cluster.agents[0]!)).toContain('/p2p/')
    } finally {
      await cluster.stop()
    }
  })
})
