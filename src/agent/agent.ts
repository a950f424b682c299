import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import { DnsAnswers, DnsServer, dnsMetrics } from '../dns/index.ts'
import { buildApp, listen, ReadModel, ReloadingTokens } from '../http/index.ts'
import type {
  FailureDetector,
  Heartbeat,
  InstanceProber,
  Liveness,
  Reaper,
  SwimDetector,
} from '../liveness/index.ts'
import type { DatagramChannel } from '../p2p/datagram-channel.ts'
import type { Discovery } from '../p2p/discovery.ts'
import type { FrameChannel } from '../p2p/frame-channel.ts'
import type { Gossip } from '../p2p/gossip.ts'
import type { GossipReach } from '../p2p/gossip-reach.ts'
import { createP2PNode, type RegistryLibp2p } from '../p2p/libp2p-node.ts'
import { loadOrCreatePeerKey } from '../p2p/peer-key.ts'
import type { AntiEntropy } from '../p2p/sync/index.ts'
import { HybridClock } from '../replica/hlc.ts'
import { LevelStore } from '../replica/level-store.ts'
import { nodeSigner } from '../replica/node-signature.ts'
import { Replica } from '../replica/replica.ts'
import type { Logger } from '../support/logger.ts'
import { PeerPenalties } from '../support/peer-penalties.ts'
import { startInOrder, stopInReverse } from '../support/startable.ts'
import { type AgentConfig, ConfigError, defaultSelfUrl } from './config.ts'
import { resolveNodeId } from './node-id.ts'
import { buildUnits } from './units.ts'

export interface Agent {
  readonly nodeId: string
  readonly selfUrl: string
  readonly replica: Replica
  readonly libp2p: RegistryLibp2p
  readonly gossip: Gossip
  /** Whether this agent hears every publisher directly; none with `tuning.gossipReach` false. */
  readonly reach: GossipReach | undefined
  readonly discovery: Discovery
  readonly sync: AntiEntropy
  readonly heartbeat: Heartbeat
  /** The beat detector (nodes of the previous release). */
  readonly detector: FailureDetector
  readonly swim: SwimDetector | undefined
  /** SWIM frames as UDP datagrams (their counts). */
  readonly swimDatagrams: DatagramChannel | undefined
  /** Every node's liveness, from SWIM or beats: what the API and DNS answer. */
  readonly liveness: Liveness
  readonly prober: InstanceProber
  readonly reaper: Reaper
  readonly beats: FrameChannel
  readonly http: FastifyInstance
  /** Where the HTTP API listens (the bound port when configured with port 0). */
  readonly httpUrl: string
  /** Where the DNS server listens (UDP and TCP), unless it is off. */
  readonly dnsAddr: { host: string; port: number } | undefined
  /** Reads `OB_API_TOKENS_FILE` again (the CLI calls it on SIGHUP); resolves with whether it took. */
  reloadTokens(): Promise<boolean>
  stop(): Promise<void>
}

/**
 * Starts an agent: opens the replica in the data dir, joins the cluster over libp2p (gossip,
 * discovery) and keeps the replica tidy. Stops in reverse order.
 */
export async function startAgent(config: AgentConfig, log: Logger): Promise<Agent> {
  // Read before anything opens: a tokens file that cannot be used stops the agent with its reason.
  const tokens =
    config.apiTokensFile === undefined
      ? undefined
      : await ReloadingTokens.open(config.apiToken, config.apiTokensFile, log.child({ unit: 'tokens' }))
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
  const privateKey = await loadOrCreatePeerKey(config.dataDir)
  const signer = nodeSigner(nodeId, peerIdFromPrivateKey(privateKey).toString(), privateKey.raw)
  const replica = await Replica.open({
    store,
    clock,
    tombstoneGraceMs: config.tombstoneGraceMs,
    maxEntities: config.maxEntities,
    signer,
    log: log.child({ unit: 'replica' }),
  })
  log.info(
    { nodeId, selfUrl, dataDir: config.dataDir, digest: replica.digest(), ...replica.counts() },
    'replica open',
  )

  const penalties = new PeerPenalties()
  const libp2p = await createP2PNode({
    privateKey,
    penalties,
    listen: config.p2pListen,
    mdns: config.mdns,
    ...(config.clusterKey === undefined ? {} : { clusterKey: config.clusterKey }),
  })
  const units = buildUnits(
    {
      nodeId,
      selfUrl,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      probeIntervalMs: config.probeIntervalMs,
      maxDriftMs: config.maxDriftMs,
      peers: config.peers,
      probeNetworks: config.probeNetworks,
      dataDir: config.dataDir,
      defaultCheck: config.defaultCheck,
      deregisterAfterMs: config.deregisterAfterMs,
      nodeReapAfterMs: config.nodeReapAfterMs,
      selfPreservationRatio: config.selfPreservationRatio,
      p2pListen: config.p2pListen,
      ...(config.clusterKey === undefined ? {} : { clusterKey: config.clusterKey }),
      ...(config.availabilityZone === undefined ? {} : { availabilityZone: config.availabilityZone }),
      ...(config.region === undefined ? {} : { region: config.region }),
    },
    { libp2p, replica, log, penalties, signer },
  )
  const {
    gossip,
    reach,
    sync,
    beats,
    detector,
    swim,
    swimDatagrams,
    liveness,
    heartbeat,
    prober,
    reaper,
    discovery,
  } = units
  await startInOrder(units.inOrder)

  // One read model (instances as answered, with liveness) for both front ends: HTTP and DNS.
  const read = new ReadModel({}, { replica, liveness })
  const metricsRegistry = new Registry()
  const http = await buildApp(
    {
      ...(config.apiToken === undefined ? {} : { apiToken: config.apiToken }),
      ...(tokens === undefined ? {} : { tokens }),
      readsNeedToken: config.readsNeedToken,
      maxWatchers: config.maxWatchers,
      bodyLimitBytes: config.bodyLimitBytes,
    },
    {
      replica,
      self: { nodeId, selfUrl },
      log,
      liveness,
      checks: prober,
      lifecycle: reaper,
      read,
      metricsRegistry,
      metricsSources: {
        replicaCounts: () => replica.counts(),
        peersConnected: () => libp2p.getPeers().length,
        gossip: () => gossip.stats,
        ...(reach === undefined ? {} : { gossipHearsAll: () => reach.hearsAll }),
        antiEntropy: () => sync.stats,
        liveness: () => liveness.statusCounts(),
        beats: () => ({ outcomes: detector.counts(), stalledResets: beats.stalledResets }),
        ...(swimDatagrams === undefined ? {} : { swimDatagrams: () => swimDatagrams.counts }),
        lifecycle: () => ({
          selfPreserving: reaper.selfPreserving,
          deregistered: prober.stats.deregistered,
          nodesReaped: reaper.stats.nodesReaped,
          instancesReaped: reaper.stats.instancesReaped,
          renewals: prober.stats.renewals,
        }),
      },
    },
  )
  const { url: httpUrl } = await listen(http, config.httpAddr)
  const dns =
    config.dnsAddr === undefined
      ? undefined
      : new DnsServer(config.dnsAddr, {
          answers: new DnsAnswers({ domain: config.dnsDomain, ttlS: config.dnsTtlS }, read),
          log: log.child({ unit: 'dns' }),
          ...dnsMetrics(metricsRegistry),
        })
  try {
    await dns?.start()
  } catch (err) {
    await http.close()
    await stopInReverse(units.inOrder)
    await libp2p.stop()
    await replica.close()
    const { host, port } = config.dnsAddr!
    throw new ConfigError(
      `OB_DNS_ADDR ${host}:${port} cannot be served (${(err as Error).message}); set another address, or off`,
    )
  }
  const dnsAddr = dns?.address()
  log.info(
    {
      peerId: libp2p.peerId.toString(),
      listen: libp2p.getMultiaddrs().map(String),
      private: config.clusterKey !== undefined,
    },
    'p2p node started',
  )

  log.info(
    { nodeId, http: httpUrl, ...(dnsAddr === undefined ? {} : { dns: `${dnsAddr.host}:${dnsAddr.port}` }) },
    'agent started',
  )
  let stopping: Promise<void> | undefined
  return {
    nodeId,
    selfUrl,
    replica,
    libp2p,
    gossip,
    reach,
    discovery,
    sync,
    heartbeat,
    detector,
    swim,
    swimDatagrams,
    liveness,
    prober,
    reaper,
    beats,
    http,
    httpUrl,
    dnsAddr,
    reloadTokens: () => tokens?.reload() ?? Promise.resolve(false),
    stop() {
      stopping ??= (async () => {
        tokens?.close()
        await dns?.stop()
        await http.close()
        await stopInReverse(units.inOrder)
        await libp2p.stop()
        await replica.close()
        log.info({ nodeId }, 'agent stopped')
      })()
      return stopping
    },
  }
}
