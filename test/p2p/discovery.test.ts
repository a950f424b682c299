import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Discovery } from '../../src/p2p/discovery.ts'
import { createP2PNode, type RegistryLibp2p } from '../../src/p2p/libp2p-node.ts'
import type { Replica } from '../../src/replica/replica.ts'
import { memoryReplica, nodeIdentity, testLogger } from '../liveness/fixtures.ts'
import { waitFor } from '../support/wait.ts'

/**
 * Discovery alone (no anti-entropy, no SWIM: nothing else dials) on real libp2p nodes, each with a
 * replica holding every node's signed record (peer id and multiaddrs), as gossip would have brought.
 */
interface Member {
  id: string
  libp2p: RegistryLibp2p
  replica: Replica
  discovery?: Discovery
}

async function startMembers(count: number): Promise<Member[]> {
  const members: Member[] = []
  for (let i = 0; i < count; i++) {
    const id = `node-${i}`
    const { key, signer } = await nodeIdentity(id)
    const libp2p = await createP2PNode({ privateKey: key, listen: ['/ip4/127.0.0.1/tcp/0'] })
    const replica = await memoryReplica(id, signer)
    await replica.put('node', {
      id,
      url: `http://${id}.test:11337`,
      lastHeartbeat: new Date().toISOString(),
      peerId: signer.peerId,
      multiaddrs: libp2p.getMultiaddrs().map(String),
    })
    members.push({ id, libp2p, replica })
  }
  // Every replica holds every record (each signed by its node).
  const records = members.map((m) => m.replica.entry(`node/${m.id}`)!)
  for (const m of members) await m.replica.apply(records, 'gossip')
  return members
}

const connected = (a: Member, b: Member) => a.libp2p.getConnections(b.libp2p.peerId).length > 0
const fullMesh = (members: Member[]) => members.every((a) => members.every((b) => a === b || connected(a, b)))

async function stopMembers(members: Member[]): Promise<void> {
  for (const m of members) {
    m.discovery?.stop()
    await m.libp2p.stop()
    await m.replica.close()
  }
}

/** Starts discovery on each member, seeded with node-0 only (a star), with a target of one connection. */
function startDiscovery(members: Member[], init: { fullMeshUpTo?: number; redialAfterMs?: number }): void {
  for (const m of members) {
    m.discovery = new Discovery(
      {
        ...init,
        seeds: m === members[0] ? [] : [members[0]!.libp2p.getMultiaddrs()[0]!.toString()],
        targetPeers: 1,
        checkIntervalMs: 100,
      },
      { libp2p: m.libp2p, replica: m.replica, log: testLogger() },
    )
    m.discovery.start()
  }
}

describe('discovery in a cluster of at most fullMeshUpTo nodes', () => {
  let members: Member[]

  beforeAll(async () => {
    members = await startMembers(4)
    startDiscovery(members, { redialAfterMs: 3000 })
  })
  afterAll(() => stopMembers(members))

  it('dials every node it knows, past targetPeers: a full mesh', async () => {
    await waitFor('a full mesh', () => fullMesh(members))
  })

  it('dials a node whose connection dropped again only after redialAfterMs', async () => {
    const [, one, two] = members as [Member, Member, Member]
    // Past the dials that made the mesh (two nodes may have dialled each other at once).
    await waitFor('the link between node-1 and node-2 settled', () => {
      const links = one.libp2p.getConnections(two.libp2p.peerId)
      return links.length > 0 && links.every((link) => Date.now() - link.timeline.open > 1000)
    })
    await one.libp2p.hangUp(two.libp2p.peerId)
    const droppedAt = performance.now()
    await waitFor('node-1 and node-2 connected again', () => connected(one, two))
    // Each still has two connections, over its target of one: the redial waits out the 3 s.
    expect(performance.now() - droppedAt).toBeGreaterThanOrEqual(2900)
  })
})

describe('discovery in a cluster larger than fullMeshUpTo', () => {
  let members: Member[]

  beforeAll(async () => {
    members = await startMembers(4)
    startDiscovery(members, { fullMeshUpTo: 3 })
  })
  afterAll(() => stopMembers(members))

  it('keeps targetPeers connections and dials no more', async () => {
    const [hub, ...leaves] = members as [Member, ...Member[]]
    await waitFor('every leaf connected to node-0', () => leaves.every((leaf) => connected(leaf, hub)))
    // Ten checks (100 ms apart) later, no leaf has dialled another: each has its one connection.
    const deadline = performance.now() + 1000
    await waitFor('ten discovery checks', () => performance.now() > deadline)
    expect(leaves.map((leaf) => leaf.libp2p.getConnections().length)).toEqual([1, 1, 1])
  })
})
