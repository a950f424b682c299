import { afterEach, describe, expect, it } from 'vitest'
import { checkStale, isStale, LAST_CONTACT_META } from '../../../src/p2p/sync/index.ts'
import { DEFAULT_TOMBSTONE_GRACE_MS } from '../../../src/replica/replica.ts'
import { NOW, openReplica } from '../../replica/fixtures.ts'
import {
  connect,
  definitionPut,
  instancePuts,
  seed,
  startPeer,
  stopPeers,
  type TestPeer,
} from './fixtures.ts'

const GRACE = DEFAULT_TOMBSTONE_GRACE_MS

describe('isStale', () => {
  it('holds only when the last contact is older than the grace period', () => {
    expect(isStale(undefined, NOW, GRACE)).toBe(false)
    expect(isStale(NOW - 1_000, NOW, GRACE)).toBe(false)
    expect(isStale(NOW - GRACE, NOW, GRACE)).toBe(false)
    expect(isStale(NOW - GRACE - 1, NOW, GRACE)).toBe(true)
  })

  it('reads lastContactMs from the replica metadata', async () => {
    const replica = await openReplica('node-a')
    expect(await checkStale(replica, NOW)).toEqual({ stale: false, lastContactMs: undefined })
    await replica.putMeta(LAST_CONTACT_META, String(NOW - GRACE - 5))
    expect(await checkStale(replica, NOW)).toEqual({ stale: true, lastContactMs: NOW - GRACE - 5 })
    await replica.putMeta(LAST_CONTACT_META, 'garbage')
    expect((await checkStale(replica, NOW)).stale).toBe(false)
  })
})

describe('stale-node rule', () => {
  let peers: TestPeer[] = []
  afterEach(async () => {
    await stopPeers(...peers)
    peers = []
  })

  /**
   * The cluster deleted `def-gone` while the returning node was away, and has purged the tombstone
   * since; the returning node still holds the definition, and a last contact before the grace period.
   */
  async function scenario(now: number) {
    const cluster = await startPeer('node-a', { init: { now: () => now } })
    const returning = await startPeer('node-r', { init: { now: () => now } })
    peers.push(cluster, returning)
    const current = instancePuts(300)
    await seed(cluster.replica, current)
    await seed(returning.replica, [...instancePuts(100), definitionPut('def-gone', NOW - 10, 'node-r')])
    await returning.replica.putMeta(LAST_CONTACT_META, String(now - GRACE - 60_000))
    await connect(returning.node, cluster.node)
    return { cluster, returning, clusterDigest: cluster.replica.digest() }
  }

  it('drops the replica of a node back after the grace period, then pulls without pushing', async () => {
    const now = Date.now()
    const { cluster, returning, clusterDigest } = await scenario(now)

    const report = await returning.sync.syncWith(cluster.node.peerId)

    expect(report).toMatchObject({
      outcome: 'repaired',
      pullOnly: true,
      entriesSent: 0,
      entriesReceived: 300,
    })
    expect(returning.replica.get('definition', 'def-gone')).toBeUndefined()
    expect(cluster.replica.get('definition', 'def-gone')).toBeUndefined()
    expect(cluster.replica.digest()).toBe(clusterDigest)
    expect(returning.replica.digest()).toBe(clusterDigest)
    expect(returning.sync.stats.staleResets).toBe(1)
    expect(returning.lines.some((l) => l.level === 40 && /dropping the local replica/.test(l.msg))).toBe(true)
    expect(await returning.replica.getMeta(LAST_CONTACT_META)).toBe(String(now))

    // Once in contact the rule is done: later sessions push again.
    await returning.replica.apply([definitionPut('def-new', NOW, 'node-r')])
    const next = await returning.sync.syncWith(cluster.node.peerId)
    expect(next).toMatchObject({ outcome: 'repaired', pullOnly: false, entriesSent: 1 })
    expect(returning.sync.stats.staleResets).toBe(1)
  })

  it('also drops the replica before serving a peer that dials it', async () => {
    const { cluster, returning, clusterDigest } = await scenario(Date.now())

    const report = await cluster.sync.syncWith(returning.node.peerId)

    expect(report.outcome).toBe('repaired')
    expect(cluster.replica.get('definition', 'def-gone')).toBeUndefined()
    expect(cluster.replica.digest()).toBe(clusterDigest)
    expect(returning.replica.digest()).toBe(clusterDigest)
    expect(returning.sync.stats.staleResets).toBe(1)
  })

  it('keeps and pushes the replica of a node in recent contact', async () => {
    const now = Date.now()
    const { cluster, returning } = await scenario(now)
    await returning.replica.putMeta(LAST_CONTACT_META, String(now - 60_000))

    const report = await returning.sync.syncWith(cluster.node.peerId)

    expect(report).toMatchObject({ outcome: 'repaired', pullOnly: false })
    expect(cluster.replica.get('definition', 'def-gone')).toBeDefined()
    expect(returning.sync.stats.staleResets).toBe(0)
  })
})
