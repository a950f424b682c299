import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import type { FastifyInstance } from 'fastify'
import { buildApp, listen } from '../http/index.ts'
import { FailureDetector, Heartbeat, InstanceProber, resolveThresholds } from '../liveness/index.ts'
import { MAX_BEAT_BYTES } from '../model/wire.ts'
import { BeatChannel } from '../p2p/beat-channel.ts'
import { Discovery } from '../p2p/discovery.ts'
import { Gossip } from '../p2p/gossip.ts'
import { createP2PNode, type RegistryLibp2p } from '../p2p/libp2p-node.ts'
import { loadOrCreatePeerKey } from '../p2p/peer-key.ts'
import { type AntiEntropy, antiEntropy } from '../p2p/sync/index.ts'
import { HybridClock } from '../replica/hlc.ts'
import { LevelStore } from '../replica/level-store.ts'
import { Replica } from '../replica/replica.ts'
import type { Logger } from '../support/logger.ts'
import { type AgentConfig, defaultSelfUrl } from './config.ts'
import { resolveNodeId } from './node-id.ts'

/** How often tombstones past the grace period are purged. */
const PURGE_INTERVAL_MS = 60 * 60 * 1000

export interface Agent {
  readonly nodeId: string
  readonly selfUrl: string
  readonly replica: Replica
  readonly libp2p: RegistryLibp2p
  readonly gossip: Gossip
  readonly discovery: Discovery
  readonly sync: AntiEntropy
  readonly heartbeat: Heartbeat
  readonly detector: FailureDetector
  readonly prober: InstanceProber
  readonly http: FastifyInstance
  /** Where the HTTP API listens (the bound port when configured with port 0). */
  readonly httpUrl: string
  stop(): Promise<void>
}

/**
 * Starts an agent: opens the replica in the data dir, joins the cluster over libp2p (gossip,
 * discovery) and keeps the replica tidy. Stops in reverse order.
 */
export async function startAgent(config: AgentConfig, log: Logger): Promise<Agent> {
  await mkdir(config.dataDir, { recursive: true })
  const store = new LevelStore({ path: join(config.dataDir, 'db') })
  await store.open()
  const { id: nodeId, generated } = await resolveNodeId(config.nodeId, store)
  const selfUrl = config.selfUrl ?? defaultSelfUrl(config)
  if (generated || config.selfUrl === undefined) {
    log.warn(
      { nodeId, selfUrl },
      'OB_NODE_ID and OB_SELF_URL are not both set: fine for one machine, but a cluster needs an explicit id and a URL every node can reach',
    )
  }
  const clock = new HybridClock({ nodeId, maxDriftMs: config.maxDriftMs })
  const replica = await Replica.open({
    store,
    clock,
    tombstoneGraceMs: config.tombstoneGraceMs,
    log: log.child({ unit: 'replica' }),
  })
  log.info(
    { nodeId, selfUrl, dataDir: config.dataDir, digest: replica.digest(), ...replica.counts() },
    'replica open',
  )

  const libp2p = await createP2PNode({
    privateKey: await loadOrCreatePeerKey(config.dataDir),
    listen: config.p2pListen,
    mdns: config.mdns,
    ...(config.clusterKey === undefined ? {} : { clusterKey: config.clusterKey }),
  })
  const gossip = new Gossip({ maxDriftMs: config.maxDriftMs }, { libp2p, replica, log })
  const discovery = new Discovery({ seeds: config.peers }, { libp2p, replica, log })
  const sync = antiEntropy()({ libp2p, replica, log: log.child({ unit: 'anti-entropy' }) })
  const beats = new BeatChannel(
    {
      maxFrameBytes: MAX_BEAT_BYTES,
      // As long as it takes to call a node unreachable, and no less than libp2p's own ping interval.
      silentConnectionMs: Math.max(
        resolveThresholds({ heartbeatIntervalMs: config.heartbeatIntervalMs }).unreachableAfterMs,
        10_000,
      ),
    },
    { libp2p, log: log.child({ unit: 'beats' }) },
  )
  const detector = new FailureDetector(
    { heartbeatIntervalMs: config.heartbeatIntervalMs },
    { beats, replica, log: log.child({ unit: 'failure-detector' }), nodeId },
  )
  const heartbeat = new Heartbeat(
    { heartbeatIntervalMs: config.heartbeatIntervalMs, dataDir: config.dataDir },
    {
      libp2p,
      beats,
      relay: () => detector.relays(),
      replica,
      log: log.child({ unit: 'heartbeat' }),
      self: () => ({
        id: nodeId,
        url: selfUrl,
        ...(config.availabilityZone === undefined ? {} : { availabilityZone: config.availabilityZone }),
        ...(config.region === undefined ? {} : { region: config.region }),
      }),
    },
  )
  // Only this agent probes the instances whose nodeUrl is its URL: N agents never probe one instance N times.
  const prober = new InstanceProber(
    { intervalMs: config.probeIntervalMs },
    { replica, log: log.child({ unit: 'instance-probe' }), selfUrl },
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
    if (Date.now() - lastChangeAt < config.heartbeatIntervalMs) return
    void sync.syncWith(peerIdFromString(peerId))
  })
  gossip.start()
  // Anti-entropy before discovery: the first connections are synced as soon as they open.
  await sync.start()
  await beats.start()
  detector.start()
  await heartbeat.start()
  prober.start()
  discovery.start()

  const http = await buildApp(
    {
      ...(config.apiToken === undefined ? {} : { apiToken: config.apiToken }),
      bodyLimitBytes: config.bodyLimitBytes,
    },
    {
      replica,
      self: { nodeId, selfUrl },
      log,
      liveness: detector,
      metricsSources: {
        replicaCounts: () => replica.counts(),
        peersConnected: () => libp2p.getPeers().length,
        gossip: () => gossip.stats,
        antiEntropy: () => sync.stats,
        liveness: () => detector.statusCounts(),
        beats: () => ({ outcomes: detector.counts(), stalledResets: beats.stalledResets }),
      },
    },
  )
  const { url: httpUrl } = await listen(http, config.httpAddr)
  log.info(
    {
      peerId: libp2p.peerId.toString(),
      listen: libp2p.getMultiaddrs().map(String),
      private: config.clusterKey !== undefined,
    },
    'p2p node started',
  )

  const purge = setInterval(() => {
    replica.purgeTombstones().then(
      (purged) => purged > 0 && log.info({ purged }, 'purged expired tombstones'),
      (err: unknown) => log.error({ err }, 'tombstone purge failed'),
    )
  }, PURGE_INTERVAL_MS)

  log.info({ nodeId, http: httpUrl }, 'agent started')
  let stopping: Promise<void> | undefined
  return {
    nodeId,
    selfUrl,
    replica,
    libp2p,
    gossip,
    discovery,
    sync,
    heartbeat,
    detector,
    prober,
    http,
    httpUrl,
    stop() {
      stopping ??= (async () => {
        clearInterval(purge)
        await http.close()
        await prober.stop()
        await heartbeat.stop()
        detector.stop()
        await beats.stop()
        discovery.stop()
        await sync.stop()
        gossip.stop()
        await libp2p.stop()
        await replica.close()
        log.info({ nodeId }, 'agent stopped')
      })()
      return stopping
    },
  }
}
