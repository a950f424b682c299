import { peerIdFromString } from '@libp2p/peer-id'
import {
  FailureDetector,
  type FailureDetectorInit,
  Heartbeat,
  type HeartbeatInit,
  InstanceProber,
  ProbeNetworks,
  Reaper,
  type ReaperInit,
  resolveThresholds,
} from '../liveness/index.ts'
import type { CheckType } from '../model/index.ts'
import { MAX_BEAT_BYTES } from '../model/wire.ts'
import { BeatChannel } from '../p2p/beat-channel.ts'
import { Discovery } from '../p2p/discovery.ts'
import { Gossip } from '../p2p/gossip.ts'
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
  /** Options beyond the configuration, for tests that need other timings. */
  tuning?: {
    heartbeat?: HeartbeatInit
    detector?: FailureDetectorInit
    sync?: AntiEntropyInit
    reaper?: ReaperInit
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
  sync: AntiEntropy
  beats: BeatChannel
  detector: FailureDetector
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
  const discovery = new Discovery({ seeds: [...settings.peers] }, { libp2p, replica, log })
  const sync = new AntiEntropy(tuning.sync ?? {}, {
    libp2p,
    replica,
    log: log.child({ unit: 'anti-entropy' }),
    isMember: (peerId) => replica.nodes().some((node) => node.peerId === peerId),
  })
  const detectorInit = { heartbeatIntervalMs, ...tuning.detector }
  const beats = new BeatChannel(
    {
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
  const heartbeat = new Heartbeat(
    {
      heartbeatIntervalMs,
      ...(settings.dataDir === undefined ? {} : { dataDir: settings.dataDir }),
      ...tuning.heartbeat,
    },
    {
      libp2p,
      beats,
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
  detector.on('digest:mismatch', ({ peerId }) => {
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
    { replica, detector, nodeId, log: log.child({ unit: 'reaper' }) },
  )
  const purger = new TombstonePurger({}, { replica, log })
  return {
    gossip,
    sync,
    beats,
    detector,
    heartbeat,
    prober,
    reaper,
    discovery,
    purger,
    // Anti-entropy before discovery: the first connections are synced as soon as they open.
    inOrder: [gossip, sync, beats, detector, heartbeat, prober, reaper, discovery, purger],
  }
}
