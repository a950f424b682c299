import { CHANGES_TOPIC } from '../../src/model/wire.ts'
import type { RegistryLibp2p } from '../../src/p2p/libp2p-node.ts'

/** Gossipsub's internals the gossip tests look at (pinned with the lockfile). */
interface GossipsubInternals {
  getMeshPeers(topic: string): string[]
  selectPeersToForward(topic: string): Set<string>
}

const internals = (node: RegistryLibp2p) => node.services.pubsub as unknown as GossipsubInternals

/** The node's gossipsub mesh on the changes topic (peer ids). */
export const meshOf = (node: RegistryLibp2p) => new Set(internals(node).getMeshPeers(CHANGES_TOPIC))

/** The peers a message on the changes topic would be forwarded to: what gossipsub calls to forward. */
export const forwardsTo = (node: RegistryLibp2p) => internals(node).selectPeersToForward(CHANGES_TOPIC)
