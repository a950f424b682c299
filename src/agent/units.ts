import { peerIdFromString } from '@libp2p/peer-id'
import {
  FailureDetector,
  type FailureDetectorInit,
  Heartbeat,
  type HeartbeatInit,
  InstanceProber,
  Liveness,
  ProbeNetworks,
  peerIdOf,
  Reaper,
  type ReaperInit,
  resolveThresholds,
  SwimDetector,
  type SwimDetectorInit,
  SwimTransports,
  type SwimTransportsInit,
} from '../liveness/index.ts'
import { MAX_SWIM_FRAME_BYTES } from '../liveness/swim/codec.ts'
import type { CheckType } from '../model/index.ts'
import { BEATS_PROTOCOL, MAX_BEAT_BYTES, SWIM_PROTOCOL } from '../model/wire.ts'
import { DatagramChannel, datagramBinds } from '../p2p/datagram-channel.ts'
import { Discovery, dialableAddrs, dialNode } from '../p2p/discovery.ts'
import { FrameChannel } from '../p2p/frame-channel.ts'
import { Gossip } from '../p2p/gossip.ts'
import { GossipReach } from '../p2p/gossip-reach.ts'
import type { RegistryLibp2p } from '../p2p/libp2p-node.ts'
import { AntiEntropy, type AntiEntropyInit } from '../p2p/sync/index.ts'
import type { NodeSigner } from '../replica/node-signature.ts'
import type { Replica } from '../replica/replica.ts'
import { TombstonePurger } from '../replica/tombstone-purger.ts'
import type { Logger } from '../support/logger.ts'
import type { PeerPenalties } from '../support/peer-penalties.ts'
import type { Startable } from '../support/startable.ts'

/** What the units of one agent are built from (the agent's configuration, resolved). */
export interface UnitSettings {
  nodeId: string
  selfUrl: string
  heartbeatIntervalMs: number
  probeIntervalMs: number
  maxDriftMs: number
  /** Seed peers: multiaddrs or host:port. */
  peers: readonly string[]
  /** Networks (CIDRs) the prober may connect to; empty or absent: any. */
  probeNetworks?: readonly string[]
  /** Where the heartbeat keeps its state across restarts; none keeps nothing. */
  dataDir?: string
  availabilityZone?: string
  region?: string
  /** The check of an instance registered without one; absent: tcp. */
  defaultCheck?: CheckType
  /** Owner deletes an instance down this long (ms, 0 never); absent: the prober's default. */
  deregisterAfterMs?: number
  /** Reap a node unreachable this long (ms, 0 never); absent: the reaper's default. */
  nodeReapAfterMs?: number
  /** Self-preservation threshold (share of known nodes unreachable); absent: the reaper's default. */
  selfPreservationRatio?: number
  /** The libp2p listen addresses as configured (SWIM datagrams use their port numbers); absent: libp2p's. */
  p2pListen?: readonly string[]
  /** `OB_CLUSTER_KEY`: SWIM datagrams are sealed with it, as libp2p connections are. */
  clusterKey?: string
  /** Options beyond the configuration, for tests that need other timings. */
  tuning?: {
    heartbeat?: HeartbeatInit
    detector?: FailureDetectorInit
    swim?: SwimDetectorInit
    /** False: SWIM frames on streams only, as the first SWIM release sent them. */
    swimDatagrams?: false
    swimTransports?: SwimTransportsInit
    sync?: AntiEntropyInit
    reaper?: ReaperInit
    /** False: never say this agent hears every node, so peers forward to it as earlier releases do. */
    gossipReach?: false
  }
}

export interface UnitParts {
  libp2p: RegistryLibp2p
  replica: Replica
  log: Logger
  /** Shared with the libp2p node's gossipsub score (see `createP2PNode`). */
  penalties?: PeerPenalties
  /** Signs our beats (the replica's signer); without one, beats go unsigned. */
  signer?: NodeSigner
}

/** The units of an agent, and the one order they start in (they stop in reverse). */
export interface AgentUnits {
  gossip: Gossip
  /** Whether this agent hears every publisher directly (then peers do not forward to it). */
  reach: GossipReach | undefined
  sync: AntiEntropy
  beats: FrameChannel
  /** The beat detector: nodes of the previous release. */
  detector: FailureDetector
  swimFrames: FrameChannel
  /** SWIM frames as signed UDP datagrams; none without a signer. */
  swimDatagrams: DatagramChannel | undefined
  /** Datagrams, streams, and the stream fallback between them; none without a signer. */
  swimTransports: SwimTransports | undefined
  /** SWIM; none without a signer (its alive statements are signed). */
  swim: SwimDetector | undefined
  /** Both detectors as one view: what the API, DNS and the reaper read. */
  liveness: Liveness
  heartbeat: Heartbeat
  reaper: Reaper
  prober: InstanceProber
  discovery: Discovery
  purger: TombstonePurger
  readonly inOrder: readonly Startable[]
}

/**
 * Builds every unit of an agent over its libp2p node and replica, with the links between them; the
 * agent and the test harnesses both use it, so tests run the units as the agent wires them.
 */
export function buildUnits(
  settings: UnitSettings,
  { libp2p, replica, log, penalties, signer }: UnitParts,
): AgentUnits {
  const { nodeId, selfUrl, heartbeatIntervalMs, tuning = {} } = settings
  const gossip = new Gossip(
    { maxDriftMs: settings.maxDriftMs },
    { libp2p, replica, log, ...(penalties === undefined ? {} : { penalties }) },
  )
  const discovery = new Discovery(
    { seeds: [...settings.peers] },
    { libp2p, replica, log, isDown: (node) => liveness.status(node) === 'unreachable' },
  )
  const sync = new AntiEntropy(tuning.sync ?? {}, {
    libp2p,
    replica,
    log: log.child({ unit: 'anti-entropy' }),
    isMember: (peerId) => replica.nodes().some((node) => node.peerId === peerId),
  })
  const detectorInit = { heartbeatIntervalMs, ...tuning.detector }
  const beats = new FrameChannel(
    {
      protocol: BEATS_PROTOCOL,
      maxFrameBytes: MAX_BEAT_BYTES,
      // As long as it takes to call a node unreachable, and no less than libp2p's own ping interval.
      silentConnectionMs: Math.max(resolveThresholds(detectorInit).unreachableAfterMs, 10_000),
    },
    { libp2p, log: log.child({ unit: 'beats' }) },
  )
  const detector = new FailureDetector(detectorInit, {
    beats,
    replica,
    log: log.child({ unit: 'failure-detector' }),
    nodeId,
  })
  const swimFrames = new FrameChannel(
    {
      protocol: SWIM_PROTOCOL,
      label: 'SWIM frame',
      maxFrameBytes: MAX_SWIM_FRAME_BYTES,
    },
    { libp2p, log: log.child({ unit: 'swim-frames' }) },
  )
  if (tuning.swimDatagrams === false) signer?.withdraw('datagram')
  const swimDatagrams =
    signer === undefined || tuning.swimDatagrams === false
      ? undefined
      : new DatagramChannel(
          {
            bind: () => datagramBinds(settings.p2pListen, libp2p.getMultiaddrs().map(String)),
            maxFrameBytes: MAX_SWIM_FRAME_BYTES,
            ...(settings.clusterKey === undefined ? {} : { clusterKey: settings.clusterKey }),
          },
          { signer, log: log.child({ unit: 'swim-datagrams' }) },
        )
  const swimTransports =
    signer === undefined
      ? undefined
      : new SwimTransports(tuning.swimTransports ?? {}, {
          datagrams: swimDatagrams,
          frames: swimFrames,
          dial: (peerId, multiaddrs) => () =>
            dialNode(libp2p, peerIdFromString(peerId), dialableAddrs(multiaddrs), AbortSignal.timeout(5000)),
          record: (id) => replica.get('node', id),
        })
  const swim =
    signer === undefined || swimTransports === undefined
      ? undefined
      : new SwimDetector(
          { heartbeatIntervalMs, ...tuning.swim },
          {
            transport: swimTransports,
            replica,
            signer,
            nodeId,
            log: log.child({ unit: 'swim' }),
          },
        )
  const liveness = new Liveness(swim, detector, replica, nodeId)
  const reach =
    tuning.gossipReach === false
      ? undefined
      : new GossipReach(
          {},
          {
            libp2p,
            log: log.child({ unit: 'gossip-reach' }),
            livePeers: () => livePeersOf(replica, liveness, nodeId),
          },
        )
  const heartbeat = new Heartbeat(
    {
      heartbeatIntervalMs,
      ...(settings.dataDir === undefined ? {} : { dataDir: settings.dataDir }),
      ...tuning.heartbeat,
    },
    {
      libp2p,
      // Beats only while a node of the previous release is up (Liveness.beatsNeeded).
      beats: { broadcast: (data) => (liveness.beatsNeeded() ? beats.broadcast(data) : 0) },
      relay: () => detector.relays(),
      ...(signer === undefined ? {} : { signBeat: (t: number) => signer.signBeat(t) }),
      replica,
      log: log.child({ unit: 'heartbeat' }),
      self: () => ({
        id: nodeId,
        url: selfUrl,
        ...(settings.availabilityZone === undefined ? {} : { availabilityZone: settings.availabilityZone }),
        ...(settings.region === undefined ? {} : { region: settings.region }),
      }),
    },
  )
  // Only this agent probes the instances whose nodeUrl is its URL: N agents never probe one instance N times.
  const prober = new InstanceProber(
    {
      intervalMs: settings.probeIntervalMs,
      ...(settings.defaultCheck === undefined ? {} : { defaultCheck: settings.defaultCheck }),
      ...(settings.deregisterAfterMs === undefined ? {} : { deregisterAfterMs: settings.deregisterAfterMs }),
    },
    {
      replica,
      log: log.child({ unit: 'instance-probe' }),
      selfUrl,
      nodeId,
      networks: new ProbeNetworks(settings.probeNetworks ?? []),
    },
  )
  // A peer whose beats carry another digest than ours holds changes we lack (or lacks ours): sync now
  // rather than at the next periodic round. Only once writes have settled: while changes are still
  // flowing, digests differ for a moment everywhere, gossip is delivering them, and a sync per beat
  // would only compete with it for CPU.
  let lastChangeAt = 0
  replica.on('change', () => {
    lastChangeAt = Date.now()
  })
  liveness.on('digest:mismatch', ({ peerId }) => {
    if (Date.now() - lastChangeAt < heartbeatIntervalMs) return
    void sync.syncWith(peerIdFromString(peerId))
  })
  const reaper = new Reaper(
    {
      ...(settings.nodeReapAfterMs === undefined ? {} : { nodeReapAfterMs: settings.nodeReapAfterMs }),
      ...(settings.selfPreservationRatio === undefined
        ? {}
        : { selfPreservationRatio: settings.selfPreservationRatio }),
      ...tuning.reaper,
    },
    { replica, detector: liveness, nodeId, log: log.child({ unit: 'reaper' }) },
  )
  const purger = new TombstonePurger({}, { replica, log })
  return {
    gossip,
    reach,
    sync,
    beats,
    detector,
    swimFrames,
    swimDatagrams,
    swimTransports,
    swim,
    liveness,
    heartbeat,
    prober,
    reaper,
    discovery,
    purger,
    // Anti-entropy before discovery: the first connections are synced as soon as they open.
    inOrder: [
      gossip,
      sync,
      beats,
      swimFrames,
      // Before the heartbeat: if it cannot listen, the first record written already says so.
      ...(swimDatagrams === undefined ? [] : [swimDatagrams]),
      detector,
      ...(swim === undefined ? [] : [swim]),
      heartbeat,
      prober,
      reaper,
      discovery,
      ...(reach === undefined ? [] : [reach]),
      purger,
    ],
  }
}

/** Peer ids of the nodes that may publish changes: every other node not known unreachable. */
function* livePeersOf(replica: Replica, liveness: Liveness, nodeId: string): Generator<string> {
  for (const node of replica.nodes()) {
    if (node.id === nodeId || liveness.status(node.id) === 'unreachable') continue
    // A node without a peer id cannot be connected to: it counts as missed.
    yield peerIdOf(node) ?? ''
  }
}
