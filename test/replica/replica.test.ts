import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import type { Change } from '../../src/replica/change.ts'
import { HybridClock } from '../../src/replica/hlc.ts'
import { LevelStore } from '../../src/replica/level-store.ts'
import { MemoryStore } from '../../src/replica/memory-store.ts'
import { nodeSigner } from '../../src/replica/node-signature.ts'
import { definition, instance, NOW, openReplica, storedEntries, withTempDir } from './fixtures.ts'

const v = (ts: number, node = 'node-b', c = 0) => ({ ts, c, node })

describe('Replica', () => {
  it('keeps a write that is already durable when a change listener throws, and logs the throw', async () => {
    const lines: Array<{ msg: string; event?: string }> = []
    const log = pino({ level: 'error' }, { write: (line: string) => void lines.push(JSON.parse(line)) })
    const store = new MemoryStore()
    const replica = await openReplica('node-a', { store, log })
    replica.on('change', () => {
      throw new Error('listener bug')
    })
    const change = await replica.put('instance', instance('i1', 'user-svc'))
    expect(change.id).toBe('i1')
    expect(replica.get('instance', 'i1')?.slug).toBe('user-svc')
    expect((await storedEntries(store)).map(([key]) => key)).toEqual(['instance/i1'])
    expect(await replica.remove('instance', 'i1')).toMatchObject({ value: null })
    expect(lines.filter((l) => l.msg === 'a replica change listener threw')).toHaveLength(2)
  })

  it('rejects a version beyond the drift bound, stores nothing and leaves the clock alone', async () => {
    const store = new MemoryStore()
    const replica = await openReplica('node-a', {
      store,
      clock: new HybridClock({ nodeId: 'node-a', now: () => NOW, maxDriftMs: 5000 }),
    })
    const before = replica.digest()
    const future: Change = {
      kind: 'instance',
      id: 'i1',
      version: v(NOW + 5001),
      value: instance('i1', 'user-svc'),
    }
    expect(await replica.apply([future])).toEqual(['rejected-drift'])
    expect(replica.get('instance', 'i1')).toBeUndefined()
    expect(await storedEntries(store)).toEqual([])
    expect(replica.digest()).toBe(before)
    expect(replica.clock.peek().ts).toBeLessThanOrEqual(NOW)
    // Within the bound it is accepted, and our next write sorts after it.
    const nearFuture = { ...future, version: v(NOW + 5000) }
    expect(await replica.apply([nearFuture])).toEqual(['applied'])
    const local = await replica.put('instance', instance('i1', 'user-svc', { deploymentId: 'mine' }))
    expect(local.version.ts).toBe(NOW + 5000)
    expect(replica.get('instance', 'i1')?.deploymentId).toBe('mine')
  })

  it('lets only a node write its own record, but anyone may delete it', async () => {
    const replica = await openReplica('node-a')
    const record = { id: 'node-b', url: 'http://b:11337', lastHeartbeat: new Date(NOW).toISOString() }
    expect(
      await replica.apply([{ kind: 'node', id: 'node-b', version: v(NOW, 'node-c'), value: record }]),
    ).toEqual(['rejected-owner'])
    expect(
      await replica.apply([{ kind: 'node', id: 'node-b', version: v(NOW, 'node-b'), value: record }]),
    ).toEqual(['applied'])
    expect(replica.nodeByUrl('http://b:11337')?.id).toBe('node-b')
    expect(await replica.remove('node', 'node-b')).toMatchObject({ value: null })
    expect(replica.nodes()).toEqual([])
    // An unsigned record (an agent of a release before records were signed) does not override a delete.
    expect(
      await replica.apply([{ kind: 'node', id: 'node-b', version: v(NOW + 1, 'node-b'), value: record }]),
    ).toEqual(['stale'])
    // The node's next (signed) heartbeat does.
    const key = await generateKeyPair('Ed25519')
    const signer = nodeSigner('node-b', peerIdFromPrivateKey(key).toString(), key.raw)
    const signed = signer.sign({ ...record, peerId: signer.peerId }, v(NOW + 2, 'node-b'))
    expect(
      await replica.apply([{ kind: 'node', id: 'node-b', version: v(NOW + 2, 'node-b'), value: signed }]),
    ).toEqual(['applied'])
    expect(replica.nodes(['node-b', 'unknown']).map((n) => n.id)).toEqual(['node-b'])
  })

  it('answers remove of an unknown entity with undefined and writes nothing', async () => {
    const replica = await openReplica('node-a')
    expect(await replica.remove('definition', 'nope')).toBeUndefined()
    expect(replica.counts()).toEqual({ definitions: 0, instances: 0, nodes: 0, tombstones: 0 })
  })

  it('announces changes once they are readable, and not stale or duplicate ones', async () => {
    const replica = await openReplica('node-a')
    const seen: Change[][] = []
    replica.on('change', (changes) => {
      for (const change of changes) expect(replica.entry(`${change.kind}/${change.id}`)).toEqual(change)
      seen.push(changes)
    })
    const put: Change = { kind: 'definition', id: 'd1', version: v(NOW), value: definition('d1') }
    expect(await replica.apply([put, put, { ...put, version: v(NOW - 1) }])).toEqual([
      'applied',
      'duplicate',
      'stale',
    ])
    expect(await replica.apply([put])).toEqual(['duplicate'])
    expect(seen).toEqual([[put]])
  })

  it('purges tombstones after the grace period, and an expired tombstone still deletes an older put', async () => {
    let now = NOW
    const replica = await openReplica('node-a', { now: () => now, tombstoneGraceMs: 1000 })
    await replica.put('definition', definition('d1'))
    const tombstone = await replica.remove('definition', 'd1')
    expect(replica.counts().tombstones).toBe(1)
    now += 999
    expect(await replica.purgeTombstones()).toBe(0)
    now += 2
    expect(await replica.purgeTombstones()).toBe(1)
    expect(replica.counts().tombstones).toBe(0)
    expect([...replica.entries()]).toEqual([])
    // The same tombstone arriving again is not stored...
    expect(await replica.apply([tombstone!])).toEqual(['expired'])
    expect([...replica.entries()]).toEqual([])
    // ...but it still wins against the older put it deleted, without leaving a tombstone behind.
    const olderPut: Change = { kind: 'definition', id: 'd1', version: v(NOW - 10), value: definition('d1') }
    const other = await openReplica('node-c', { now: () => now, tombstoneGraceMs: 1000 })
    await other.apply([olderPut])
    expect(await other.apply([tombstone!])).toEqual(['applied'])
    expect([...other.entries()]).toEqual([])
    expect(other.digest()).toBe(replica.digest())
  })

  it('keeps state, indexes and digest across close and reopen of LevelDB', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'db')
      const first = await openReplica('node-a', { store: new LevelStore({ path }) })
      for (let i = 0; i < 50; i++) {
        await first.put(
          'instance',
          instance(`i${i}`, `svc-${i % 5}`, { tags: [`t${i % 3}`], deploymentId: `dep-${i % 2}` }),
        )
      }
      await first.remove('instance', 'i7')
      await first.put('definition', definition('d1'))
      const digest = first.digest()
      const slug0 = first.instances({ slug: 'svc-0' })
      const byTagAndDeployment = first.instances({ tag: 't1', deploymentId: 'dep-0' })
      const lastVersion = first.clock.peek()
      await first.close()

      // Reopen with a clock that went back in time: versions must still move forward.
      const reopened = await openReplica('node-a', {
        store: new LevelStore({ path }),
        now: () => NOW - 60_000,
      })
      expect(reopened.digest()).toBe(digest)
      expect(reopened.counts()).toEqual({ definitions: 1, instances: 49, nodes: 0, tombstones: 1 })
      expect(reopened.instances({ slug: 'svc-0' })).toEqual(slug0)
      expect(reopened.instances({ tag: 't1', deploymentId: 'dep-0' })).toEqual(byTagAndDeployment)
      expect(reopened.get('instance', 'i7')).toBeUndefined()
      const next = await reopened.put('definition', definition('d2'))
      expect(
        next.version.ts > lastVersion.ts ||
          (next.version.ts === lastVersion.ts && next.version.c > lastVersion.c),
      ).toBe(true)
      await reopened.close()
    })
  })

  it('writes no status read from a registration that another has replaced meanwhile', async () => {
    const replica = await openReplica('node-a')
    const first = await replica.put('instance', instance('i1', 'svc', { deploymentId: 'first' }))
    const read = replica.get('instance', 'i1')!
    const second = await replica.put('instance', instance('i1', 'svc', { deploymentId: 'second' }))
    expect(await replica.putStatus({ ...read, status: 'Healthy' }, first.version)).toBeUndefined()
    expect(replica.entry('instance/i1')?.version).toEqual(second.version)
    expect(replica.get('instance', 'i1')?.deploymentId).toBe('second')
    const written = await replica.putStatus(
      { ...replica.get('instance', 'i1')!, status: 'Healthy' },
      second.version,
    )
    expect(written?.basedOn).toEqual(second.version)
  })

  it('filters instances by every indexed and unindexed field together', async () => {
    const replica = await openReplica('node-a')
    // i1 is Healthy on its owner's word: node-a's status write of an instance on node-a.
    const nodeUrl = 'http://127.0.0.1:11337'
    await replica.put('node', { id: 'node-a', url: nodeUrl, lastHeartbeat: new Date(NOW).toISOString() })
    const i1 = instance('i1', 'user-svc', { tags: ['blue'], deploymentId: 'dep-1', nodeUrl })
    await replica.put('instance', i1)
    await replica.putStatus({ ...i1, status: 'Healthy' })
    await replica.put('instance', instance('i2', 'user-svc', { tags: ['green'], deploymentId: 'dep-1' }))
    await replica.put('instance', instance('i3', 'mail-svc', { tags: ['blue'], path: '/api' }))
    const ids = (filter: Parameters<typeof replica.instances>[0]) =>
      replica.instances(filter).map((i) => i.id)
    expect(ids({ slug: 'user-svc' })).toEqual(['i1', 'i2'])
    expect(ids({ slug: 'user-svc', tag: 'blue' })).toEqual(['i1'])
    expect(ids({ tag: 'blue' })).toEqual(['i1', 'i3'])
    expect(ids({ deploymentId: 'dep-1', status: 'Healthy' })).toEqual(['i1'])
    expect(ids({ id: 'i2', slug: 'mail-svc' })).toEqual([])
    expect(ids({ path: '/api' })).toEqual(['i3'])
    expect(ids({ scheme: 'http' })).toEqual(['i1', 'i2', 'i3'])
    expect(ids({ ip: replica.get('instance', 'i3')!.ip! })).toEqual(['i3'])
    expect(ids({ url: replica.get('instance', 'i2')!.url })).toEqual(['i2'])
    expect(ids({ slug: 'unknown' })).toEqual([])
    // Re-registering under another slug moves it between index entries.
    await replica.put('instance', instance('i1', 'mail-svc'))
    expect(ids({ slug: 'user-svc' })).toEqual(['i2'])
    expect(ids({ tag: 'blue' })).toEqual(['i3'])
  })

  it('clear() forgets every entry on disk and in memory', async () => {
    const store = new MemoryStore()
    const replica = await openReplica('node-a', { store })
    await replica.put('definition', definition('d1'))
    const empty = (await openReplica('x')).digest()
    await replica.clear()
    expect(await storedEntries(store)).toEqual([])
    expect(replica.definitions()).toEqual([])
    expect(replica.digest()).toBe(empty)
  })
})
