import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import type { Change } from '../../../src/replica/change.ts'
import { changeArb, NOW, openReplica } from '../../replica/fixtures.ts'
import {
  connect,
  definitionPut,
  instancePuts,
  jsonBytes,
  reportOf,
  seed,
  seeded,
  startPeer,
  stopPeers,
  type TestPeer,
  tombstone,
} from './fixtures.ts'

let peers: TestPeer[] = []
async function peer(
  nodeId: string,
  ...args: Parameters<typeof startPeer> extends [string, ...infer R] ? R : never
) {
  const p = await startPeer(nodeId, ...args)
  peers.push(p)
  return p
}

afterEach(async () => {
  await stopPeers(...peers)
  peers = []
})

/** A replica holding exactly `changes` merged, for the expected digest after a sync. */
async function digestOf(changes: readonly Change[]): Promise<string> {
  const replica = await openReplica('reference')
  await seed(replica, changes)
  return replica.digest()
}

describe('anti-entropy session', () => {
  it('exchanges only digests when the replicas are equal', async () => {
    const a = await peer('node-a')
    const b = await peer('node-b')
    const shared = instancePuts(2_000)
    await seed(a.replica, shared)
    await seed(b.replica, shared)
    await connect(a.node, b.node)

    const report = await a.sync.syncWith(b.node.peerId)

    expect(report).toMatchObject({
      outcome: 'in-sync',
      role: 'client',
      rounds: 1,
      entriesReceived: 0,
      entriesSent: 0,
    })
    expect(report.bytesSent + report.bytesReceived).toBeLessThan(300)
    const served = await reportOf(b, (r) => r.role === 'server', 'the server report')
    expect(served.outcome).toBe('in-sync')
  })

  it('converges two replicas with overlapping histories in one session, in both directions', async () => {
    const random = seeded(7)
    const shared = instancePuts(3_000)
    const onlyA: Change[] = []
    const onlyB: Change[] = []
    for (let i = 0; i < 300; i++) {
      const n = Math.floor(random() * 3_500) // some keys in the shared range, some new
      const ts = NOW - 1_000 + Math.floor(random() * 1_000)
      const side = random() < 0.5 ? onlyA : onlyB
      const node = side === onlyA ? 'node-a' : 'node-b'
      const op = random()
      if (op < 0.3) side.push(tombstone('instance', `inst-${n}`, ts, node))
      else if (op < 0.6) side.push(...instancePuts(1, { from: n, node, c: 1 + Math.floor(random() * 3) }))
      else side.push(definitionPut(`def-${n % 50}`, ts, node, `img-${node}-${i}`))
    }
    const expected = await digestOf([...shared, ...onlyA, ...onlyB])

    for (const [client, server] of [
      ['a', 'b'],
      ['b', 'a'],
    ] as const) {
      const a = await peer('node-a')
      const b = await peer('node-b')
      await seed(a.replica, [...shared, ...onlyA])
      await seed(b.replica, [...shared, ...onlyB])
      expect(a.replica.digest()).not.toBe(b.replica.digest())
      await connect(a.node, b.node)
      const byName = { a, b }

      const report = await byName[client].sync.syncWith(byName[server].node.peerId)

      expect(report.outcome, `${client} syncing with ${server}`).toBe('repaired')
      await reportOf(
        byName[server],
        (r) => r.role === 'server' && r.outcome === 'repaired',
        'the server report',
      )
      expect(a.replica.digest()).toBe(expected)
      expect(b.replica.digest()).toBe(expected)
      // Each session line names the peer and the role once (the child logger carries them).
      const repaired = [...a.raw, ...b.raw].filter((line) => line.includes('anti-entropy: repaired'))
      expect(repaired.length).toBeGreaterThan(0)
      for (const line of repaired) {
        expect(line.match(/"peer":/g)).toHaveLength(1)
        expect(line.match(/"role":/g)).toHaveLength(1)
      }
      await stopPeers(a, b)
      peers = []
    }
  })

  it('converges random small histories (puts, deletes, version ties)', async () => {
    const a = await peer('node-a')
    const b = await peer('node-b')
    await connect(a.node, b.node)
    await fc.assert(
      fc.asyncProperty(
        fc.array(changeArb, { maxLength: 20 }),
        fc.array(changeArb, { maxLength: 20 }),
        fc.array(changeArb, { maxLength: 20 }),
        async (shared, onlyA, onlyB) => {
          const left = await openReplica('node-a')
          const right = await openReplica('node-b')
          await seed(left, [...shared, ...onlyA])
          await seed(right, [...shared, ...onlyB])
          // Swap the replicas under the running units: a fresh AntiEntropy per run keeps it simple.
          await a.sync.stop()
          await b.sync.stop()
          const runA = await startPeerSync(a, left)
          const runB = await startPeerSync(b, right)
          const report = await runA.syncWith(b.node.peerId)
          await runA.stop()
          await runB.stop()
          expect(report.outcome).not.toBe('failed')
          expect(left.digest()).toBe(right.digest())
          expect(left.digest()).toBe(await digestOf([...shared, ...onlyA, ...onlyB]))
        },
      ),
      { numRuns: 25 },
    )
  })

  it('exchanges a small fraction of the data when large replicas differ in a few entries', async () => {
    const a = await peer('node-a')
    const b = await peer('node-b')
    const shared = instancePuts(20_000)
    await seed(a.replica, [...shared, ...instancePuts(3, { from: 30_000, node: 'node-a' })])
    await seed(b.replica, [
      ...shared,
      ...instancePuts(3, { from: 40_000, node: 'node-b' }),
      ...instancePuts(2, { from: 500, node: 'node-b', c: 5 }), // newer versions of shared entries
    ])
    await b.replica.apply([tombstone('instance', 'inst-9000', NOW, 'node-b')])
    await a.replica.apply([tombstone('instance', 'inst-12000', NOW, 'node-a')])
    await connect(a.node, b.node)

    const report = await a.sync.syncWith(b.node.peerId)

    expect(report.outcome).toBe('repaired')
    expect(a.replica.digest()).toBe(b.replica.digest())
    const fullCopy = jsonBytes(a.replica.entries())
    const exchanged = report.bytesSent + report.bytesReceived
    console.log(
      `20,000 entries, 10 differences: ${exchanged} bytes exchanged in ${report.rounds} round trips, ` +
        `${((100 * exchanged) / fullCopy).toFixed(2)}% of a full copy (${fullCopy} bytes), ${report.ms} ms`,
    )
    expect(exchanged).toBeLessThan(0.05 * fullCopy)
    expect(report.rounds).toBe(6)
    expect(report.entriesReceived + report.entriesSent).toBeLessThan(200)
  })

  it('gives a late joiner with an empty replica everything', async () => {
    const a = await peer('node-a')
    const joiner = await peer('node-j')
    const changes = [
      ...instancePuts(20_000),
      definitionPut('def-1', NOW - 5, 'node-a'),
      tombstone('instance', 'inst-99999', NOW - 5, 'node-a'),
    ]
    await seed(a.replica, changes)
    await connect(joiner.node, a.node)

    const report = await joiner.sync.syncWith(a.node.peerId)

    expect(report).toMatchObject({
      outcome: 'repaired',
      entriesReceived: changes.length,
      entriesSent: 0,
      rounds: 3,
    })
    expect(joiner.replica.digest()).toBe(a.replica.digest())
    expect(joiner.replica.counts()).toEqual(a.replica.counts())
    console.log(
      `late joiner, ${changes.length} entries: ${report.ms} ms, ${report.bytesReceived} bytes received`,
    )
  })

  it('syncs with a newly connected peer, dialled from the smaller peer id only', async () => {
    const a = await peer('node-a', { init: { syncOnConnect: true } })
    const b = await peer('node-b', { init: { syncOnConnect: true } })
    await seed(a.replica, instancePuts(50))
    await seed(b.replica, instancePuts(50, { from: 100 }))
    const [small, large] = a.node.peerId.toString() < b.node.peerId.toString() ? [a, b] : [b, a]

    await connect(large.node, small.node)

    const dialled = await reportOf(small, (r) => r.role === 'client', 'the on-connect session')
    expect(dialled.outcome).toBe('repaired')
    await reportOf(large, (r) => r.role === 'server', 'the served session')
    expect(a.replica.digest()).toBe(b.replica.digest())
    expect(large.reports.filter((r) => r.role === 'client')).toEqual([])
  })

  it('syncs periodically with connected peers', async () => {
    const a = await peer('node-a', { init: { intervalMs: 100 } })
    const b = await peer('node-b')
    await connect(a.node, b.node)
    await b.replica.apply(instancePuts(5))

    await reportOf(a, (r) => r.role === 'client' && r.outcome === 'repaired', 'a periodic session')
    expect(a.replica.digest()).toBe(b.replica.digest())
    await b.replica.apply(instancePuts(5, { from: 10 }))
    await reportOf(a, (r) => r.role === 'client' && r.entriesReceived === 5, 'a second one')
  })

  it('runs one session per peer at a time', async () => {
    const a = await peer('node-a')
    const b = await peer('node-b')
    await seed(b.replica, instancePuts(500))
    await connect(a.node, b.node)

    const first = a.sync.syncWith(b.node.peerId)
    const second = a.sync.syncWith(b.node.peerId)
    expect(second).toBe(first)
    expect((await first).outcome).toBe('repaired')

    // Both sides dial at once: one session goes on, the other is refused as busy (or runs after it).
    await b.replica.apply(instancePuts(5, { from: 1_000 }))
    await a.replica.apply(instancePuts(5, { from: 2_000 }))
    const [fromA, fromB] = await Promise.all([a.sync.syncWith(b.node.peerId), b.sync.syncWith(a.node.peerId)])
    const outcomes = [fromA, fromB].map((r) => r.reason ?? r.outcome)
    expect(outcomes.some((o) => o === 'repaired')).toBe(true)
    for (const o of outcomes) expect(['repaired', 'in-sync', 'busy']).toContain(o)
    expect(a.replica.digest()).toBe(b.replica.digest())
  })
})

async function startPeerSync(p: TestPeer, replica: import('../../../src/replica/replica.ts').Replica) {
  const { AntiEntropy } = await import('../../../src/p2p/sync/index.ts')
  const { memoryLogger } = await import('./fixtures.ts')
  const sync = new AntiEntropy(
    { intervalMs: 0, syncOnConnect: false },
    {
      libp2p: p.node,
      replica,
      log: memoryLogger().log,
    },
  )
  await sync.start()
  return sync
}
