/**
 * A misbehaving member: a libp2p peer that holds the cluster key (a compromised machine, or a buggy
 * agent of another release) and talks the registry's protocols with whatever it likes. The adversary
 * tests point it at a real in-process cluster and check that the cluster holds.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { CHANGES_TOPIC } from '../../src/model/wire.ts'
import { createP2PNode, type RegistryLibp2p } from '../../src/p2p/libp2p-node.ts'
import { AntiEntropy, type SyncReport } from '../../src/p2p/sync/index.ts'
import type { Change } from '../../src/replica/change.ts'
import type { Replica } from '../../src/replica/replica.ts'
import { openReplica } from '../replica/fixtures.ts'
import type { TestAgent } from '../support/cluster.ts'
import { waitFor } from '../support/wait.ts'

export const CLUSTER_KEY = 'adversary-tests-cluster-key'

export interface Attacker {
  node: RegistryLibp2p
  /** Its libp2p key: it may sign with it, as any member can sign its own records. */
  key: PrivateKey
  /** The attacker's own replica, which it pushes to agents through anti-entropy. */
  replica: Replica
  /** Connects to every agent and waits until each sees the attacker on the changes topic. */
  join(agents: readonly TestAgent[]): Promise<void>
  /** Publishes one gossip message with exactly these bytes. */
  publish(data: Uint8Array | string): Promise<void>
  /** Publishes changes as a well-formed gossip message. */
  publishChanges(changes: readonly unknown[]): Promise<void>
  /** Runs an anti-entropy session with `agent`, pushing what the attacker's replica holds. */
  push(agent: TestAgent): Promise<SyncReport>
  stop(): Promise<void>
}

export async function startAttacker(): Promise<Attacker> {
  const key = await generateKeyPair('Ed25519')
  const node = await createP2PNode({
    privateKey: key,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    clusterKey: CLUSTER_KEY,
  })
  node.services.pubsub.subscribe(CHANGES_TOPIC)
  const replica = await openReplica('attacker', { now: Date.now, maxEntities: 10_000_000 })
  const sync = new AntiEntropy(
    { intervalMs: 0, syncOnConnect: false, timeoutMs: 60_000 },
    { libp2p: node, replica, log: (await import('../liveness/fixtures.ts')).testLogger() },
  )
  await sync.start()
  const encoder = new TextEncoder()
  return {
    node,
    key,
    replica,
    async join(agents) {
      for (const agent of agents) {
        await waitFor(`attacker connected to ${agent.nodeId}`, () =>
          node.dial(agent.libp2p.getMultiaddrs()[0]!).then(
            () => true,
            () => false,
          ),
        )
      }
      await waitFor('every agent sees the attacker on the changes topic', () =>
        agents.every((agent) =>
          agent.libp2p.services.pubsub.getSubscribers(CHANGES_TOPIC).some((peer) => peer.equals(node.peerId)),
        ),
      )
    },
    async publish(data) {
      await node.services.pubsub.publish(
        CHANGES_TOPIC,
        typeof data === 'string' ? encoder.encode(data) : data,
      )
    },
    async publishChanges(changes) {
      await node.services.pubsub.publish(CHANGES_TOPIC, encoder.encode(JSON.stringify({ changes })))
    },
    push: (agent) => sync.syncWith(agent.libp2p.peerId),
    async stop() {
      await sync.stop()
      await node.stop()
      await replica.close()
    },
  }
}

/** A valid instance put, as the attacker would write it. */
export function instanceChange(n: number, version: { ts: number; c: number; node: string }): Change {
  const id = `flood-${n}`
  return {
    kind: 'instance',
    id,
    version,
    value: {
      id,
      url: `http://127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}:9`,
      scheme: 'http',
      ip: `127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
      port: 9,
      slug: 'flood',
      status: 'Healthy',
    },
  }
}
