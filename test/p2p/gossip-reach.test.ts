import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Message } from '@libp2p/interface'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHANGES_TOPIC, REACH_TOPIC } from '../../src/model/wire.ts'
import { GossipReach } from '../../src/p2p/gossip-reach.ts'
import { createP2PNode, type RegistryLibp2p } from '../../src/p2p/libp2p-node.ts'
import { createLogger } from '../../src/support/logger.ts'
import { forwardsTo, meshOf } from '../support/gossip-mesh.ts'
import { waitFor } from '../support/wait.ts'

/**
 * Three bare libp2p nodes as agents configure them, each with its GossipReach, wired by hand so the
 * test chooses the topology (an agent's discovery would always complete the mesh).
 */
interface Member {
  node: RegistryLibp2p
  reach: GossipReach
  received: string[]
}

const idOf = (member: Member) => member.node.peerId.toString()

describe('gossip reach: no forwarding to an agent that hears every publisher', () => {
  const members: Member[] = []
  let a: Member
  let b: Member
  let c: Member

  beforeAll(async () => {
    const log = await createLogger('silent')
    for (let i = 0; i < 3; i++) {
      const node = await createP2PNode({
        privateKey: await generateKeyPair('Ed25519'),
        listen: ['/ip4/127.0.0.1/tcp/0'],
      })
      const member: Member = { node, received: [], reach: undefined as never }
      member.reach = new GossipReach(
        { checkIntervalMs: 100 },
        { libp2p: node, log, livePeers: () => members.filter((m) => m !== member).map(idOf) },
      )
      node.services.pubsub.subscribe(CHANGES_TOPIC)
      node.services.pubsub.addEventListener('message', (event: CustomEvent<Message>) => {
        if (event.detail.topic === CHANGES_TOPIC)
          member.received.push(new TextDecoder().decode(event.detail.data))
      })
      member.reach.start()
      members.push(member)
    }
    ;[a, b, c] = members as [Member, Member, Member]
  })

  afterAll(async () => {
    for (const member of members) {
      member.reach.stop()
      await member.node.stop()
    }
  })

  const connect = async (from: Member, to: Member) => {
    await from.node.dial(to.node.getMultiaddrs()[0]!)
    await waitFor('both on the changes topic', () =>
      [from, to].every((m) =>
        m.node.services.pubsub
          .getSubscribers(CHANGES_TOPIC)
          .some((p) => p.equals((m === from ? to : from).node.peerId)),
      ),
    )
  }
  const publish = (from: Member, text: string) =>
    from.node.services.pubsub.publish(CHANGES_TOPIC, new TextEncoder().encode(text))

  it('in a line A–B–C, only B hears all; B forwards what A publishes to C, A and C forward nothing to B', async () => {
    await connect(a, b)
    await connect(b, c)
    await waitFor('B says it hears all', () => b.reach.hearsAll)
    expect([a.reach.hearsAll, c.reach.hearsAll]).toEqual([false, false])
    // The mesh is as gossipsub makes it (B in A's and C's, both in B's); only forwarding changes.
    await waitFor('B meshed with A and C', () => meshOf(b.node).has(idOf(a)) && meshOf(b.node).has(idOf(c)))
    await waitFor('A and C meshed with B', () => meshOf(a.node).has(idOf(b)) && meshOf(c.node).has(idOf(b)))
    expect([...forwardsTo(b.node)].sort()).toEqual([idOf(a), idOf(c)].sort())
    expect([forwardsTo(a.node).size, forwardsTo(c.node).size]).toEqual([0, 0])
    await publish(a, 'line')
    await waitFor('C got what A published', () => c.received.includes('line'))
    expect(b.received).toContain('line')
  })

  it('in a full mesh all hear all and no one forwards; a publish still reaches everyone', async () => {
    await connect(a, c)
    await waitFor('every member hears all', () => members.every((m) => m.reach.hearsAll))
    await waitFor('no member forwards to any other', () =>
      members.every((m) => forwardsTo(m.node).size === 0),
    )
    await publish(c, 'full')
    await waitFor('A and B got it', () => a.received.includes('full') && b.received.includes('full'))
  })

  it('a lost link is acted on at once: its two ends are forwarded to again', async () => {
    await a.node.hangUp(c.node.peerId)
    await waitFor('A and C no longer say they hear all', () => !a.reach.hearsAll && !c.reach.hearsAll)
    expect(b.node.services.pubsub.getSubscribers(REACH_TOPIC).map(String)).not.toContain(idOf(a))
    await waitFor('B forwards to A and C', () => forwardsTo(b.node).size === 2)
    await publish(a, 'healed')
    await waitFor('C got it through B', () => c.received.includes('healed'))
  })

  it('rejects a message on the reach topic and scores its sender down', async () => {
    const scoreOfA = () =>
      (b.node.services.pubsub as unknown as { getScore(peer: string): number }).getScore(idOf(a))
    expect(scoreOfA()).toBeGreaterThanOrEqual(0)
    // Subscribed to the topic (A is not): B is a topic peer of A's publish.
    expect(b.reach.hearsAll).toBe(true)
    await a.node.services.pubsub.publish(REACH_TOPIC, new TextEncoder().encode('junk'))
    await waitFor('A scored below zero by B', () => scoreOfA() < 0)
    expect(b.received).not.toContain('junk')
  })
})
