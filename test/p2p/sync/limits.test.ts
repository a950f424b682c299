/**
 * What one peer, or many, can make an agent hold through anti-entropy: sessions at once (across all
 * peers) and entries per session are bounded, and entries past the replica's limit are refused.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterEach, describe, expect, it } from 'vitest'
import type { RegistryLibp2p } from '../../../src/p2p/libp2p-node.ts'
import { openReplica } from '../../replica/fixtures.ts'
import { waitFor } from '../../support/wait.ts'
import {
  connect,
  instancePuts,
  RawPeer,
  reportOf,
  seed,
  startNode,
  startPeer,
  stopPeers,
  type TestPeer,
} from './fixtures.ts'

const OTHER_DIGEST = `${'A'.repeat(43)}=`

let peers: TestPeer[] = []
let nodes: RegistryLibp2p[] = []
afterEach(async () => {
  await stopPeers(...peers)
  for (const node of nodes) await node.stop()
  peers = []
  nodes = []
})

async function attackerOf(server: TestPeer): Promise<RegistryLibp2p> {
  const node = await startNode()
  nodes.push(node)
  await connect(node, server.node)
  return node
}

/**
 * Seeds `server`, then two made-up identities: the first opens a session and stalls in it (taking the
 * one slot there is for it), the second is refused as busy. Returns both streams, still open.
 */
async function holdTheSlotThenBeRefused(server: TestPeer): Promise<[RawPeer, RawPeer]> {
  await seed(server.replica, instancePuts(100))
  const first = await RawPeer.dial(await attackerOf(server), server.node)
  first.send({ type: 'hello', digest: OTHER_DIGEST, entries: 1_000 })
  expect(await first.next()).toMatchObject({ type: 'hello' })
  const second = await RawPeer.dial(await attackerOf(server), server.node)
  expect(await second.next()).toEqual({ type: 'error', reason: 'busy' })
  return [first, second]
}

describe('anti-entropy limits', () => {
  it('refuses a session as busy when as many run at once as allowed, whichever peers hold them', async () => {
    const server = await startPeer('node-s', { init: { maxSessions: 1, timeoutMs: 5_000 } })
    peers.push(server)
    // One peer holds the one slot; another peer, another identity, is refused, not queued.
    const [first, second] = await holdTheSlotThenBeRefused(server)
    // Our own outbound sessions count against the same bound.
    const report = await server.sync.syncWith((await attackerOf(server)).peerId)
    expect(report).toMatchObject({ outcome: 'failed', reason: 'busy' })
    first.abort()
    second.abort()
  })

  it('keeps sessions for known members when made-up identities hold the slots strangers may use', async () => {
    const member = await startPeer('node-m')
    const server = await startPeer('node-s', {
      init: { maxSessions: 8, maxStrangerSessions: 1, timeoutMs: 5_000 },
      isMember: (peerId) => peerId === member.node.peerId.toString(),
    })
    peers.push(server, member)
    const [first, second] = await holdTheSlotThenBeRefused(server)
    await connect(member.node, server.node)
    expect(await member.sync.syncWith(server.node.peerId)).toMatchObject({ outcome: 'repaired' })
    expect(member.replica.counts().instances).toBe(100)
    first.abort()
    second.abort()
  })

  it('ends a session that pushes more entries than a whole replica may hold, and merges none past the limit', async () => {
    const small = await openReplica('node-s', { maxEntities: 20 })
    const server = await startPeer('node-s', { replica: small, init: { timeoutMs: 5_000 } })
    const client = await startPeer('node-c')
    peers.push(server, client)
    await seed(client.replica, instancePuts(200))
    await connect(client.node, server.node)
    await client.sync.syncWith(server.node.peerId)
    const report = await reportOf(server, (r) => r.role === 'server', 'the server report')
    expect(report).toMatchObject({ outcome: 'failed', reason: 'too-many-entries' })
    expect(server.replica.counts().instances).toBeLessThanOrEqual(20)
  })

  it('refuses entries past the replica limit one by one, counted, while the session goes on', async () => {
    const small = await openReplica('node-s', { maxEntities: 50 })
    const server = await startPeer('node-s', { replica: small })
    const client = await startPeer('node-c')
    peers.push(server, client)
    await seed(client.replica, instancePuts(80))
    await connect(client.node, server.node)
    await client.sync.syncWith(server.node.peerId)
    expect(server.replica.counts().instances).toBe(50)
    expect(server.sync.stats.applied['rejected-quota'] + client.sync.stats.applied['rejected-quota']).toBe(30)
    expect(server.lines.some((l) => /past the replica limit/.test(l.msg))).toBe(true)
  })

  it('releases the memory of half-sent frames when their streams are reset', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const buffers = () => {
      gc()
      return process.memoryUsage().arrayBuffers
    }
    const server = await startPeer('node-s', { init: { maxSessions: 8, timeoutMs: 120_000 } })
    peers.push(server)
    await seed(server.replica, instancePuts(10))
    const MiB = 1024 * 1024
    const baseline = buffers()
    // Eight sessions (every slot), each with a frame announced as 4 MiB of which 3 MiB arrived. Both
    // sides are in this process: what is held counts the sent copies too.
    const halves: RawPeer[] = []
    for (let i = 0; i < 8; i++) {
      const peer = await RawPeer.dial(await attackerOf(server), server.node)
      peer.send({ type: 'hello', digest: OTHER_DIGEST, entries: 10 })
      expect(await peer.next()).toMatchObject({ type: 'hello' })
      peer.write(Uint8Array.from([0x80, 0x80, 0x80, 0x02])) // varint 4 MiB
      peer.write(new Uint8Array(3 * MiB).fill(0x20))
      halves.push(peer)
    }
    await waitFor('the halves held by the server', () => buffers() - baseline > 16 * MiB, {
      timeoutMs: 15_000,
    })
    const held = buffers() - baseline
    for (const peer of halves) peer.abort()
    halves.length = 0 // the test's own side of the streams, so only what the server keeps can stay
    await waitFor('the memory released', () => buffers() - baseline < 4 * MiB, {
      timeoutMs: 15_000,
      everyMs: 500,
    })
    console.info(
      `half-sent frames: +${(held / MiB).toFixed(1)} MiB held, +${((buffers() - baseline) / MiB).toFixed(1)} MiB after the resets`,
    )
  }, 40_000)
})
