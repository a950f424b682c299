import { generateKeyPair } from '@libp2p/crypto/keys'
import {
  FailureDetector,
  type FailureDetectorInit,
  Heartbeat,
  type HeartbeatInit,
} from '../../src/liveness/index.ts'
import { CHANGES_TOPIC, MAX_BEAT_BYTES } from '../../src/model/wire.ts'
import { BeatChannel } from '../../src/p2p/beat-channel.ts'
import { Gossip } from '../../src/p2p/gossip.ts'
import { createP2PNode, type RegistryLibp2p } from '../../src/p2p/libp2p-node.ts'
import type { Replica } from '../../src/replica/replica.ts'
import type { Logger } from '../../src/support/logger.ts'
import { waitFor } from '../support/wait.ts'
import { memoryReplica, testLogger } from './fixtures.ts'

/** One agent's worth of parts: libp2p, a replica, change gossip, beat channel, heartbeat and failure detector. */
export interface LivenessNode {
  id: string
  libp2p: RegistryLibp2p
  replica: Replica
  gossip: Gossip
  beats: BeatChannel
  heartbeat: Heartbeat
  detector: FailureDetector
  log: Logger
  stop(): Promise<void>
}

export async function startLivenessNode(
  id: string,
  init: HeartbeatInit & FailureDetectorInit,
): Promise<LivenessNode> {
  const log = testLogger().child({ node: id })
  const libp2p = await createP2PNode({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
  })
  const replica = await memoryReplica(id)
  const gossip = new Gossip({}, { libp2p, replica, log })
  const beats = new BeatChannel({ maxFrameBytes: MAX_BEAT_BYTES }, { libp2p, log })
  const detector = new FailureDetector(init, { beats, replica, log, nodeId: id })
  const heartbeat = new Heartbeat(init, {
    libp2p,
    beats,
    relay: () => detector.relays(),
    replica,
    log,
    self: () => ({ id, url: `http://${id}.test:11337` }),
  })
  gossip.start()
  await beats.start()
  detector.start()
  let stopping: Promise<void> | undefined
  return {
    id,
    libp2p,
    replica,
    gossip,
    beats,
    heartbeat,
    detector,
    log,
    stop() {
      stopping ??= (async () => {
        await heartbeat.stop()
        detector.stop()
        await beats.stop()
        gossip.stop()
        await libp2p.stop()
        await replica.close()
      })()
      return stopping
    },
  }
}

/**
 * Dials every pair (retrying: libp2p refuses more than 5 inbound connections a second from one host,
 * and every test node is 127.0.0.1), then waits until each node sees each other as a subscriber of
 * the changes topic.
 */
export async function connectAll(nodes: readonly LivenessNode[]): Promise<void> {
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) {
      const target = nodes[j]!.libp2p.getMultiaddrs()[0]!
      await waitFor(
        `${nodes[i]!.id} connected to ${nodes[j]!.id}`,
        () =>
          nodes[i]!.libp2p.dial(target).then(
            () => true,
            () => false,
          ),
        { everyMs: 250 },
      )
    }
  }
  await waitFor('every node subscribed to changes on every other', () =>
    nodes.every((a) => {
      const subscribers = new Set(a.libp2p.services.pubsub.getSubscribers(CHANGES_TOPIC).map(String))
      return nodes.every((b) => b === a || subscribers.has(b.libp2p.peerId.toString()))
    }),
  )
}

/** Starts `count` connected nodes `node-0`…, then (unless told not to) their heartbeats. */
export async function startLivenessCluster(
  count: number,
  init: HeartbeatInit & FailureDetectorInit,
  { startHeartbeats = true }: { startHeartbeats?: boolean } = {},
): Promise<LivenessNode[]> {
  const nodes = await Promise.all(
    Array.from({ length: count }, (_, i) => startLivenessNode(`node-${i}`, init)),
  )
  await connectAll(nodes)
  if (startHeartbeats) await Promise.all(nodes.map((n) => n.heartbeat.start()))
  return nodes
}
