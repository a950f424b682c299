import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Change, entityKey } from '../../src/replica/change.ts'
import { MemoryStore } from '../../src/replica/memory-store.ts'
import { changeArb, instance, lwwOracle, NOW, openReplica, storedEntries } from './fixtures.ts'

const RUNS = 300

/** Applies `changes` to a fresh in-memory replica in batches of the given sizes (cycled). */
async function replicaOf(changes: readonly Change[], batchSizes: readonly number[] = [changes.length || 1]) {
  const store = new MemoryStore()
  const replica = await openReplica('observer', { store })
  let at = 0
  for (let i = 0; at < changes.length; i++) {
    const size = batchSizes[i % batchSizes.length]!
    await replica.apply(changes.slice(at, at + size))
    at += size
  }
  return { replica, stored: await storedEntries(store) }
}

describe('merge (property-based)', () => {
  it('any permutation, duplication and batching of the same changes yields byte-identical state and digest', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(changeArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(), { minLength: 3, maxLength: 3 }),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 4 }),
        async (changes, seeds, batchSizes) => {
          const expected = lwwOracle(changes)
          const orders = seeds.map((seed) => {
            // A permutation with some changes delivered twice, as gossip and anti-entropy both deliver.
            const shuffled = fc.sample(fc.shuffledSubarray(changes, { minLength: changes.length }), {
              seed,
              numRuns: 1,
            })[0]!
            const dupes = fc.sample(fc.subarray(changes), { seed: seed + 1, numRuns: 1 })[0]!
            return [...shuffled, ...dupes]
          })
          const replicas = await Promise.all(orders.map((order) => replicaOf(order, batchSizes)))
          for (const { replica, stored } of replicas) {
            expect(stored).toEqual(expected)
            expect(replica.digest()).toBe(replicas[0]!.replica.digest())
          }
        },
      ),
      { numRuns: RUNS },
    )
  })

  it('merging is associative: merging two replicas’ histories equals merging everything at once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(changeArb, { maxLength: 30 }),
        fc.array(changeArb, { maxLength: 30 }),
        async (left, right) => {
          const a = await replicaOf(left)
          const b = await replicaOf(right)
          // Ship each replica's whole state to the other, as anti-entropy does.
          await a.replica.apply([...b.replica.entries()])
          await b.replica.apply([...a.replica.entries()])
          const all = await replicaOf([...left, ...right])
          expect(a.replica.digest()).toBe(all.replica.digest())
          expect(b.replica.digest()).toBe(all.replica.digest())
        },
      ),
      { numRuns: RUNS },
    )
  })

  it('digests are equal exactly when stored states are equal', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(changeArb, { maxLength: 12 }),
        fc.array(changeArb, { maxLength: 12 }),
        async (left, right) => {
          const a = await replicaOf(left)
          const b = await replicaOf(right)
          const sameState = JSON.stringify(a.stored) === JSON.stringify(b.stored)
          expect(a.replica.digest() === b.replica.digest()).toBe(sameState)
        },
      ),
      { numRuns: RUNS },
    )
  })

  it('an older put never resurrects a deleted entity, whatever the arrival order', async () => {
    await fc.assert(
      fc.asyncProperty(
        changeArb.filter((c) => c.value !== null),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.integer({ min: 0, max: 999 }), { maxLength: 5 }),
        fc.boolean(),
        async (put, deleteLaterBy, olderPutOffsets, deleteFirst) => {
          const tombstone: Change = {
            ...put,
            version: { ts: put.version.ts + deleteLaterBy, c: 0, node: 'node-z' },
            value: null,
          }
          const olderPuts = olderPutOffsets.map((off) => ({
            ...put,
            version: { ...put.version, ts: tombstone.version.ts - 1 - off },
          }))
          const order = deleteFirst
            ? [tombstone, put, ...olderPuts]
            : [put, ...olderPuts, tombstone, ...olderPuts]
          const { replica } = await replicaOf(order, [1])
          expect(replica.get(put.kind, put.id)).toBeUndefined()
          expect(replica.entry(entityKey(put.kind, put.id))?.value).toBeNull()
        },
      ),
      { numRuns: RUNS },
    )
  })

  it('a status write never brings back an instance deleted after the registration it is based on', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.boolean(),
        async (deleteAfter, statusAfter, statusFirst) => {
          const registration: Change = {
            kind: 'instance',
            id: 'i1',
            version: { ts: NOW - 200_000, c: 0, node: 'node-a' },
            value: instance('i1', 'user-svc'),
          }
          const deleted: Change = {
            ...registration,
            version: { ts: registration.version.ts + deleteAfter, c: 0, node: 'node-b' },
            value: null,
          }
          // Written on a replica that had not seen the delete, even much later by the clock.
          const status: Change = {
            ...registration,
            version: { ts: registration.version.ts + statusAfter, c: 0, node: 'node-a' },
            value: instance('i1', 'user-svc', { status: 'Healthy' }),
            basedOn: registration.version,
          }
          const order = statusFirst ? [registration, status, deleted] : [registration, deleted, status]
          const { replica } = await replicaOf(order, [1])
          expect(replica.get('instance', 'i1')).toBeUndefined()
        },
      ),
      { numRuns: RUNS },
    )
  })

  it('indexes answer the same as a scan of the live entities', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(changeArb, { maxLength: 40 }),
        fc.record({
          slug: fc.option(fc.constantFrom('user-svc', 'billing-svc', 'nope'), { nil: undefined }),
          tag: fc.option(fc.constantFrom('blue', 'green'), { nil: undefined }),
        }),
        async (changes, filter) => {
          const { replica } = await replicaOf(changes, [3])
          const live = lwwOracle(changes)
            .map(([, encoded]) => JSON.parse(encoded).d)
            .filter((v) => v !== null && String(v.id).startsWith('inst-'))
          const scanned = live
            .filter((i) => filter.slug === undefined || i.slug === filter.slug)
            .filter((i) => filter.tag === undefined || (i.tags ?? []).includes(filter.tag))
            .map((i) => i.id)
            .sort()
          expect(replica.instances(filter).map((i) => i.id)).toEqual(scanned)
        },
      ),
      { numRuns: RUNS },
    )
  })
})

it('orders writes from several nodes in the same wall-clock millisecond the same way everywhere', async () => {
  // Three writers whose wall clocks read the same millisecond write the same entity concurrently.
  const writers = await Promise.all(
    ['node-b', 'node-c', 'node-a'].map((id) => openReplica(id, { now: () => NOW })),
  )
  const written: Change[] = []
  for (const writer of writers) {
    const { instance } = await import('./fixtures.ts')
    written.push(
      await writer.put('instance', instance('inst-1', 'user-svc', { deploymentId: writer.clock.nodeId })),
    )
  }
  expect(new Set(written.map((c) => c.version.ts))).toEqual(new Set([NOW]))
  const observers = await Promise.all([0, 1, 2].map((i) => openReplica(`obs-${i}`, { now: () => NOW })))
  await observers[0]!.apply(written)
  await observers[1]!.apply([...written].reverse())
  for (const change of [written[1]!, written[2]!, written[0]!]) await observers[2]!.apply([change])
  for (const observer of observers) {
    // Equal ts and counter: the writer id breaks the tie, and node-c is the greatest.
    expect(observer.get('instance', 'inst-1')?.deploymentId).toBe('node-c')
    expect(observer.digest()).toBe(observers[0]!.digest())
  }
})
