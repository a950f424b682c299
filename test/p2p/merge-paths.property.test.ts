/**
 * Every path a change takes into a replica decides winners with the one merge order (`lww.ts`): a
 * direct apply, the gossip codec, and anti-entropy's entry frames together with what a sync sends back
 * (`newerThanReceived`). Each path must reach the state an independent oracle computes, byte for byte,
 * so a second copy of the tie-break anywhere on those paths fails here.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MAX_ENTRIES_PER_FRAME } from '../../src/model/wire.ts'
import { decodeChangesMessage, encodeChangesMessages } from '../../src/p2p/gossip-codec.ts'
import { EntryReceiver, newerThanReceived, sendEntries } from '../../src/p2p/sync/entries.ts'
import { decodeFrame } from '../../src/p2p/sync/messages.ts'
import { type Change, entityKey } from '../../src/replica/change.ts'
import { MemoryStore } from '../../src/replica/memory-store.ts'
import type { Replica } from '../../src/replica/replica.ts'
import { testLogger } from '../liveness/fixtures.ts'
import { changeArb, lwwOracle, NOW, openReplica, storedEntries } from '../replica/fixtures.ts'

const RUNS = 200

async function fresh(
  nodeId = 'observer',
): Promise<{ replica: Replica; stored: () => Promise<Array<[string, string]>> }> {
  const store = new MemoryStore()
  const replica = await openReplica(nodeId, { store })
  return { replica, stored: () => storedEntries(store) }
}

/** Through the gossip codec: encoded into messages (small, so batches split), decoded, merged. */
async function viaGossip(replica: Replica, changes: readonly Change[]): Promise<void> {
  for (const message of encodeChangesMessages(changes, 2048)) {
    const decoded = decodeChangesMessage(message, { maxMessageBytes: 2048, maxDriftMs: 5000, nowMs: NOW })
    await replica.apply(decoded, 'gossip')
  }
}

/** Through anti-entropy's entry frames: sent, decoded as frames, taken by an EntryReceiver. */
async function viaSync(replica: Replica, changes: readonly Change[]): Promise<Map<string, Change>> {
  const frames: Uint8Array[] = []
  await sendEntries({ send: async (bytes) => void frames.push(bytes as Uint8Array) }, changes, 4096, () => {
    throw new Error('no entry is too large here')
  })
  const tally = { entriesReceived: 0, rejectedEntries: 0, applied: {} }
  const receiver = new EntryReceiver({ replica, log: testLogger(), remember: true, tally })
  for (const bytes of frames) {
    const frame = decodeFrame(bytes)
    if (frame.type !== 'entries') throw new Error(`unexpected ${frame.type} frame`)
    expect(frame.entries.length).toBeLessThanOrEqual(MAX_ENTRIES_PER_FRAME)
    await receiver.take(frame.entries)
  }
  await receiver.finish()
  expect(tally.rejectedEntries).toBe(0)
  return receiver.byKey
}

describe('every merge path (property-based)', () => {
  it('direct apply, gossip and anti-entropy frames all reach the oracle state', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(changeArb, { minLength: 1, maxLength: 40 }), async (changes) => {
        const expected = lwwOracle(changes)
        const direct = await fresh()
        await direct.replica.apply(changes)
        const gossip = await fresh()
        await viaGossip(gossip.replica, changes)
        const sync = await fresh()
        await viaSync(sync.replica, changes)
        for (const path of [direct, gossip, sync]) expect(await path.stored()).toEqual(expected)
      }),
      { numRuns: RUNS },
    )
  })

  it('a sync in both directions (entries, then what is newer sent back) leaves both sides at the oracle state', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(changeArb, { maxLength: 30 }),
        fc.array(changeArb, { maxLength: 30 }),
        async (left, right) => {
          const a = await fresh('node-x')
          const b = await fresh('node-y')
          await a.replica.apply(left)
          await b.replica.apply(right)
          // a sends its entries; b merges them and sends back what it holds that beats what a sent.
          const received = await viaSync(b.replica, [...a.replica.entries()])
          const back = newerThanReceived(b.replica.entries(), received)
          const onlyOnB = [...b.replica.entries()].filter((c) => !received.has(entityKey(c.kind, c.id)))
          await viaSync(a.replica, [...back, ...onlyOnB.filter((c) => !back.includes(c))])
          const expected = lwwOracle([...left, ...right])
          expect(await a.stored()).toEqual(expected)
          expect(await b.stored()).toEqual(expected)
        },
      ),
      { numRuns: RUNS },
    )
  })
})
