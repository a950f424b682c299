import { createHash } from 'node:crypto'
import { type GossipsubEvents, gossipsub } from '@chainsafe/libp2p-gossipsub'
import { createTopicScoreParams } from '@chainsafe/libp2p-gossipsub/score'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { type Identify, identify } from '@libp2p/identify'
import { type Libp2p, type PrivateKey, type PubSub, StrictNoSign } from '@libp2p/interface'
import { mdns } from '@libp2p/mdns'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { CHANGES_TOPIC, MAX_GOSSIP_MESSAGE_BYTES, REACH_TOPIC } from '../model/wire.ts'
import type { PeerPenalties } from '../support/peer-penalties.ts'

export type RegistryLibp2p = Libp2p<{ identify: Identify; pubsub: PubSub<GossipsubEvents> }>

export interface P2PNodeInit {
  /** The agent's persistent identity (see peer-key.ts). */
  privateKey: PrivateKey
  /** Multiaddrs to listen on, e.g. `/ip4/0.0.0.0/tcp/11338`. */
  listen: string[]
  /** Shared secret of a private network; peers without it fail the handshake. @default open network */
  clusterKey?: string
  /** Discover peers on the LAN with mDNS. @default false */
  mdns?: boolean
  /**
   * Penalties the agent holds against peers (the gossip unit's rate limit adds them); gossipsub counts
   * each point as -1 of application-specific score (weight 10), so a peer that keeps flooding past its
   * rate is graylisted within seconds (`test/p2p/gossip-limits.test.ts`).
   */
  penalties?: PeerPenalties
}

/**
 * Turns any cluster key string into the swarm key format of `@libp2p/pnet` (32 bytes, hex), so
 * operators can use a passphrase rather than generate a key file.
 */
export function swarmKey(clusterKey: string): Uint8Array {
  const hex = createHash('sha256').update(`p2p-registry:${clusterKey}`).digest('hex')
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${hex}`)
}

/**
 * Gossipsub's default thresholds, named here because tests and metrics read the graylist one: at -80
 * three invalid messages in a row (-10 × 3²) graylist a peer.
 */
export const GOSSIP_SCORE_THRESHOLDS = {
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 20,
}

/** A topic's score: invalid messages only (see scoreParams). */
function invalidOnlyScore() {
  return createTopicScoreParams({
    topicWeight: 1,
    timeInMeshWeight: 0,
    firstMessageDeliveriesWeight: 0,
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    invalidMessageDeliveriesWeight: -10,
    invalidMessageDeliveriesDecay: 0.9,
  })
}

function sha256Prefix(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest().subarray(0, 12))
}

/** The libp2p 2 stack (docs/protocols.md): TCP, Noise, Yamux, identify and gossipsub (plus pnet, mDNS). */
export async function createP2PNode(init: P2PNodeInit): Promise<RegistryLibp2p> {
  const node = await createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: init.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    ...(init.clusterKey === undefined
      ? {}
      : { connectionProtector: preSharedKey({ psk: swarmKey(init.clusterKey) }) }),
    peerDiscovery: init.mdns ? [mdns({ interval: 10_000 })] : [],
    // libp2p refuses more than 5 inbound connections per second from one IP by default; agents behind
    // one NAT address (or a cluster on one machine) would be refused at start-up.
    connectionManager: { inboundConnectionThreshold: 50 },
    // Off: it opens a ping stream on every connection every 10 s from both ends (stream set-up and
    // protocol negotiation: several frames and socket writes each), which was most of an idle cluster's
    // remaining CPU. The beats already cross every connection every heartbeat, so FrameChannel closes a
    // connection that carries none for a while instead.
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        // Our topics only: a peer cannot make us track arbitrary topics. (Beats do not use gossipsub:
        // frame-channel.ts says why.)
        allowedTopics: [CHANGES_TOPIC, REACH_TOPIC],
        // Drop oversized RPCs at the stream, before they are buffered or parsed.
        maxInboundDataLength: MAX_GOSSIP_MESSAGE_BYTES + 16 * 1024,
        emitSelf: false,
        // Every message reaches each node about D times, and gossip announces message ids to Dlazy more
        // peers: D 3 halves the copies of the defaults (D 6, Dlazy 6). The publisher still sends to every
        // topic peer (flood publish):
        // one hop to every connected node is what keeps propagation in milliseconds; with mesh-only
        // publishing, writes took up to a second (IHAVE/IWANT recovery) in the cluster benchmark.
        // Forwarding is then only for nodes the publisher is not connected to, so agents connected to
        // every node are skipped when forwarding (forwardOnlyToThoseWhoNeedIt): in a full mesh each node
        // gets one copy.
        D: 3,
        Dlo: 2,
        Dhi: 4,
        Dlazy: 2,
        mcacheGossip: 1,
        floodPublish: true,
        // Short message ids (12 bytes of a hash of the content) keep IHAVE/IWANT gossip small.
        msgIdFn: (message) => sha256Prefix(message.data),
        // Unsigned messages. A signature proves who published a message, which means nothing here: any
        // agent may write any entity (docs/replication.md), every hop is a Noise connection to a known peer (and,
        // with OB_CLUSTER_KEY, a cluster member), and each change carries its writer in its version.
        // Signing and verifying cost about 100 µs and 150 µs of CPU per message and receiver, and
        // 150 bytes per copy on the wire.
        globalSignaturePolicy: StrictNoSign,
        // Peer scoring: only invalid messages count (the validator rejects them), squared, so a member
        // that sends a handful of bad messages is graylisted (its RPCs ignored) until the count decays;
        // a slow trickle of mistakes is forgiven. Registry traffic is sparse, so delivery counts and mesh
        // time say nothing of a peer; agents share addresses behind NAT and on one test machine, so the
        // IP colocation penalty is off.
        scoreParams: {
          IPColocationFactorWeight: 0,
          appSpecificScore: (peer) => -(init.penalties?.get(peer) ?? 0),
          topics: { [CHANGES_TOPIC]: invalidOnlyScore(), [REACH_TOPIC]: invalidOnlyScore() },
        },
        scoreThresholds: GOSSIP_SCORE_THRESHOLDS,
      }),
    },
  })
  forwardOnlyToThoseWhoNeedIt(node.services.pubsub)
  return node
}

type ForwardSelector = (topic: string, source?: string, exclude?: Set<string>) => Set<string>
type IDontWantSender = (msgId: Uint8Array, topic: string, source: string) => void

/**
 * Gossipsub forwards each message it accepts to its mesh peers. A peer subscribed to REACH_TOPIC is
 * connected to every live node, so it got the message from its publisher's flood already
 * (`gossip-reach.ts`): it is left out of the forward, and stays in the mesh, so that it still forwards
 * to the peers that need it. For the same reason an agent that hears all sends no IDONTWANT (gossipsub
 * 1.2 sends one to every mesh peer per message over 512 bytes): no one forwards to it anyway.
 *
 * Gossipsub has no public hook for either, so its (private, version-pinned) methods are wrapped; if a
 * later version lacks them, the agent says so and gossips as before: more copies, never fewer.
 * `test/p2p/gossip-reach.test.ts` fails if the wrap stops working.
 */
function forwardOnlyToThoseWhoNeedIt(pubsub: RegistryLibp2p['services']['pubsub']): void {
  // Its own sets (peer ids by topic, our subscriptions), read as they are: this runs per message.
  const gossipsub = pubsub as unknown as {
    selectPeersToForward?: ForwardSelector
    sendIDontWants?: IDontWantSender
    topics?: Map<string, Set<string>>
    subscriptions?: Set<string>
  }
  const { selectPeersToForward: select, sendIDontWants, topics, subscriptions } = gossipsub
  if (
    typeof select !== 'function' ||
    typeof sendIDontWants !== 'function' ||
    !(topics instanceof Map) ||
    !(subscriptions instanceof Set)
  ) {
    console.warn('p2p-registry: this gossipsub cannot skip peers that hear every publisher')
    return
  }
  gossipsub.selectPeersToForward = (topic, source, exclude) => {
    const peers = select.call(gossipsub, topic, source, exclude)
    const hearAll = topic === CHANGES_TOPIC ? topics.get(REACH_TOPIC) : undefined
    if (hearAll !== undefined) for (const peer of peers) if (hearAll.has(peer)) peers.delete(peer)
    return peers
  }
  gossipsub.sendIDontWants = (msgId, topic, source) => {
    if (topic === CHANGES_TOPIC && subscriptions.has(REACH_TOPIC)) return
    sendIDontWants.call(gossipsub, msgId, topic, source)
  }
}
