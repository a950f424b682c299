import { describe, expect, it } from 'vitest'
import type { Change } from '../../src/replica/change.ts'
import { QuotaError } from '../../src/replica/replica.ts'
import { definition, instance, NOW, openReplica } from './fixtures.ts'

const put = (id: string, ts = NOW): Change => ({
  kind: 'instance',
  id,
  version: { ts, c: 0, node: 'node-x' },
  value: instance(id, 'svc'),
})

describe('the replica limit per kind (OB_MAX_ENTITIES)', () => {
  it('refuses new entries past it, locally and from peers, but not updates, deletes or other kinds', async () => {
    const replica = await openReplica('node-a', { maxEntities: 3 })
    for (const id of ['i1', 'i2']) await replica.put('instance', instance(id, 'svc'))
    // One slot left: a batch from a peer fills it and is refused the rest, counted per change.
    expect(await replica.apply([put('i3'), put('i4'), put('i5')])).toEqual([
      'applied',
      'rejected-quota',
      'rejected-quota',
    ])
    await expect(replica.put('instance', instance('i6', 'svc'))).rejects.toThrow(QuotaError)
    await expect(replica.put('instance', instance('i6', 'svc'))).rejects.toThrow(
      'the replica holds 3 instance entries, its limit (OB_MAX_ENTITIES); delete some first',
    )
    expect(replica.instances().map((i) => i.id)).toEqual(['i1', 'i2', 'i3'])
    // Updates and deletes of held entries do not grow the replica; other kinds have their own limit.
    expect(await replica.apply([put('i3', NOW + 1)])).toEqual(['applied'])
    expect(await replica.remove('instance', 'i1')).toBeDefined()
    await replica.put('definition', definition('d1'))
    // A tombstone is an entry too: the deleted instance's slot stays taken until it is purged.
    await expect(replica.put('instance', instance('i7', 'svc'))).rejects.toThrow(QuotaError)
    await replica.put('instance', instance('i1', 'svc'))
    expect(replica.counts()).toMatchObject({ instances: 3, definitions: 1 })
  })
})
