import stringify from 'safe-stable-stringify'
import { type Node, parseNode } from '../model/index.ts'
import type { GpuInfo } from './nvidia-smi.ts'
import type { NodeUsage } from './usage.ts'

/** What the agent knows about itself; asked again on every heartbeat, so a change is picked up. */
export interface NodeSelf {
  id: string
  url: string
  availabilityZone?: string
  region?: string
}

/** The slow-changing facts of a node record: a change of any of them rewrites the record at once. */
export interface NodeIdentity {
  self: NodeSelf
  /** libp2p peer id, as a string. */
  peerId: string
  /** The multiaddrs peers can dial, as strings (sorted, so their order does not count as a change). */
  multiaddrs: string[]
  gpus: GpuInfo[]
}

/** A GPU's id in the node record, as 1Backend builds it: node URL + `:` + index on the node. */
export function gpuId(url: string, gpu: GpuInfo): string {
  return `${url}:${gpu.intraNodeId}`
}

/**
 * A fingerprint of the fields whose change rewrites the record at once: url, zone, region, peer id,
 * multiaddrs and the GPU list (which GPUs: index, uuid, name, bus, memory size — not their load).
 * `lastHeartbeat`, `usage` and GPU load change all the time and only ride along on the periodic refresh.
 */
export function identityFingerprint(identity: NodeIdentity): string {
  const { id, url, availabilityZone, region } = identity.self
  return stringify({
    id,
    url,
    availabilityZone,
    region,
    peerId: identity.peerId,
    multiaddrs: identity.multiaddrs,
    gpus: identity.gpus.map((g) => [g.intraNodeId, g.uuid, g.name, g.busId, g.memoryTotal]),
  }) as string
}

/**
 * The node record as this node writes it (docs/replication.md, Node records): the schema's fields, plus `peerId` and
 * `multiaddrs` (ours; clients ignore them, discovery and the failure detector use them).
 * Validated and put in canonical key order by `parseNode`; throws `ValidationError` for a bad id or URL.
 */
export function buildNodeRecord(identity: NodeIdentity, usage: NodeUsage, nowMs: number): Node {
  const { self } = identity
  return parseNode({
    id: self.id,
    url: self.url,
    availabilityZone: self.availabilityZone,
    region: self.region,
    lastHeartbeat: new Date(nowMs).toISOString(),
    usage,
    gpus: identity.gpus.map((gpu) => ({ id: gpuId(self.url, gpu), ...gpu })),
    peerId: identity.peerId,
    multiaddrs: identity.multiaddrs,
  })
}
