/**
 * A member that sends more changes than allowed: the excess is ignored (not merged), and once it has
 * been ignored often enough, gossipsub graylists the member through the penalties the gossip unit
 * hands it, as it does a member that sends invalid messages.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterEach, describe, expect, it } from 'vitest'
import { CHANGES_TOPIC } from '../../src/model/wire.ts'
import { Gossip } from '../../src/p2p/gossip.ts'
import { createP2PNode, GOSSIP_SCORE_THRESHOLDS, type RegistryLibp2p } from '../../src/p2p/libp2p-node.ts'
import type { Replica } from '../../src/replica/replica.ts'
import { PeerPenalties } from '../../src/support/peer-penalties.ts'
import { instanceChange } from '../adversary/attacker.ts'
import { memoryReplica, testLogger } from '../liveness/fixtures.ts'
import { waitFor } from '../support/wait.ts'

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function node(penalties?: PeerPenalties): Promise<RegistryLibp2p> {
  const libp2p = await createP2PNode({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    ...(penalties === undefined ? {} : { penalties }),
  })
  cleanups.push(async () => libp2p.stop())
  return libp2p
}

describe('gossip rate limit', () => {
  it('ignores changes past a peer’s rate, and graylists a peer that keeps flooding', async () => {
    const penalties = new PeerPenalties()
    const receiver = await node(penalties)
    const replica: Replica = await memoryReplica('receiver')
    const gossip = new Gossip(
      { peerChangeRate: { perSecond: 10, burst: 20 } },
      { libp2p: receiver, replica, log: testLogger(), penalties },
    )
    gossip.start()
    cleanups.push(async () => gossip.stop())
    const flooder = await node()
    flooder.services.pubsub.subscribe(CHANGES_TOPIC)
    await flooder.dial(receiver.getMultiaddrs()[0]!)
    await waitFor('the flooder seen on the topic', () =>
      receiver.services.pubsub.getSubscribers(CHANGES_TOPIC).some((p) => p.equals(flooder.peerId)),
    )
    const encoder = new TextEncoder()
    const score = () =>
      (receiver.services.pubsub as unknown as { getScore(peer: string): number }).getScore(
        flooder.peerId.toString(),
      )
    // Keep flooding until the receiver graylists the flooder (gossipsub refreshes scores every second).
    let n = 0
    await waitFor(
      'the flooder graylisted',
      async () => {
        for (const end = n + 200; n < end; n++) {
          const change = instanceChange(n, { ts: Date.now(), c: 0, node: 'flooder' })
          await flooder.services.pubsub.publish(
            CHANGES_TOPIC,
            encoder.encode(JSON.stringify({ changes: [change] })),
          )
        }
        return score() < GOSSIP_SCORE_THRESHOLDS.graylistThreshold
      },
      { timeoutMs: 20_000, everyMs: 50 },
    )
    console.log(
      `[gossip-limits] graylisted after ${n} messages; ${gossip.stats.rejected['rate-limited']} rate-limited`,
    )
    expect(gossip.stats.rejected['rate-limited']).toBeGreaterThan(900)
    // The burst and what the rate refilled got in; nothing beyond.
    await waitFor(
      'the accepted ones merged',
      () => replica.counts().instances === gossip.stats.changesReceived,
    )
    expect(replica.counts().instances).toBeLessThan(100)
  })
})
