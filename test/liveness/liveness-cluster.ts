import type { PrivateKey } from '@libp2p/interface'
import { type AgentUnits, buildUnits } from '../../src/agent/units.ts'
import {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_PROBE_INTERVAL_MS,
  type FailureDetectorInit,
  type HeartbeatInit,
  type SwimTransportsInit,
} from '../../src/liveness/index.ts'
import { CHANGES_TOPIC } from '../../src/model/wire.ts'
import { createP2PNode, type RegistryLibp2p } from '../../src/p2p/libp2p-node.ts'
import { DEFAULT_MAX_DRIFT_MS } from '../../src/replica/hlc.ts'
import type { Replica } from '../../src/replica/replica.ts'
import type { Logger } from '../../src/support/logger.ts'
import { startInOrder, stopInReverse } from '../../src/support/startable.ts'
import { waitFor } from '../support/wait.ts'
import { memoryReplica, nodeIdentity, testLogger } from './fixtures.ts'

/** One agent's units, wired as the agent wires them (`buildUnits`), on a memory replica. */
export interface LivenessNode extends AgentUnits {
  id: string
  key: PrivateKey
  libp2p: RegistryLibp2p
  replica: Replica
  log: Logger
  stop(): Promise<void>
}

export interface LivenessNodeOptions {
  /** Start the heartbeat (tests that watch the first beats start it themselves). @default false */
  startHeartbeat?: boolean
  /**
   * `beats`: a node of a release before SWIM (its record does not say it speaks SWIM), whose liveness
   * comes from beats. `swim-streams`: a node of the first SWIM release, which sends and takes SWIM
   * frames on libp2p streams only (its record does not declare `datagram`). @default 'swim'
   */
  protocol?: 'swim' | 'swim-streams' | 'beats'
  /** The node's key, to restart a node as itself (its id is bound to its key). @default a new one */
  key?: PrivateKey
  /** How SWIM falls back from datagrams to streams. */
  swimTransports?: SwimTransportsInit
}

/**
 * Starts one node's units. Instances are probed by the node whose URL is `http://<id>.test:11337`;
 * discovery has no seeds (`connectAll` dials).
 */
export async function startLivenessNode(
  id: string,
  init: HeartbeatInit & FailureDetectorInit,
  { startHeartbeat = false, protocol = 'swim', key: given, swimTransports }: LivenessNodeOptions = {},
): Promise<LivenessNode> {
  const log = testLogger().child({ node: id })
  const { key, signer } = await nodeIdentity(id, protocol === 'beats' ? ['beat', 'status'] : undefined, given)
  const libp2p = await createP2PNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] })
  const replica = await memoryReplica(id, signer)
  const units = buildUnits(
    {
      nodeId: id,
      selfUrl: `http://${id}.test:11337`,
      heartbeatIntervalMs: init.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
      probeIntervalMs: DEFAULT_PROBE_INTERVAL_MS,
      maxDriftMs: DEFAULT_MAX_DRIFT_MS,
      peers: [],
      tuning: {
        heartbeat: init,
        detector: init,
        ...(swimTransports === undefined ? {} : { swimTransports }),
        ...(protocol === 'swim-streams' ? { swimDatagrams: false } : {}),
      },
    },
    { libp2p, replica, log, signer },
  )
  await startInOrder(units.inOrder.filter((unit) => startHeartbeat || unit !== units.heartbeat))
  let stopping: Promise<void> | undefined
  return {
    ...units,
    id,
    key,
    libp2p,
    replica,
    log,
    stop() {
      stopping ??= (async () => {
        await stopInReverse(units.inOrder)
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
  {
    startHeartbeats = true,
    ...options
  }: { startHeartbeats?: boolean } & Pick<LivenessNodeOptions, 'protocol' | 'swimTransports'> = {},
): Promise<LivenessNode[]> {
  const nodes = await Promise.all(
    Array.from({ length: count }, (_, i) => startLivenessNode(`node-${i}`, init, options)),
  )
  await connectAll(nodes)
  if (startHeartbeats) await Promise.all(nodes.map((n) => n.heartbeat.start()))
  return nodes
}
