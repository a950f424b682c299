import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type LivenessNode, startLivenessNode } from '../liveness/liveness-cluster.ts'
import { waitFor } from '../support/wait.ts'

const connected = (a: LivenessNode, b: LivenessNode) => a.libp2p.getConnections(b.libp2p.peerId).length > 0

/**
 * Four nodes dialled as a star around node-0, with a target of one connection each: discovery completes
 * the full mesh anyway (a cluster of at most `fullMeshUpTo` nodes), from the multiaddrs in node records.
 */
describe('discovery keeps a small cluster a full mesh', () => {
  let nodes: LivenessNode[]

  beforeAll(async () => {
    nodes = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        startLivenessNode(
          `node-${i}`,
          { heartbeatIntervalMs: 500 },
          { startHeartbeat: true, discovery: { targetPeers: 1, checkIntervalMs: 200, redialAfterMs: 3000 } },
        ),
      ),
    )
    for (const leaf of nodes.slice(1)) await leaf.libp2p.dial(nodes[0]!.libp2p.getMultiaddrs()[0]!)
  })

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
  })

  it('dials every node it knows, past targetPeers', async () => {
    await waitFor('every pair connected', () =>
      nodes.every((a) => nodes.every((b) => a === b || connected(a, b))),
    )
  })
})
