import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Change } from '../../src/replica/change.ts'
import { HybridClock } from '../../src/replica/hlc.ts'
import { compareVersions, MAX_COUNTER, type Version } from '../../src/replica/version.ts'
import { definition, openReplica } from './fixtures.ts'

describe('HybridClock', () => {
  it('never goes backwards, even when the wall clock does', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 50 }), (walls) => {
        let i = 0
        const clock = new HybridClock({ nodeId: 'n1', now: () => walls[Math.min(i++, walls.length - 1)]! })
        let last = clock.now()
        for (let k = 1; k < walls.length; k++) {
          const next = clock.now()
          expect(compareVersions(next, last)).toBeGreaterThan(0)
          last = next
        }
      }),
      { numRuns: 300 },
    )
  })

  it('follows the wall clock when it moves forward', () => {
    let wall = 1000
    const clock = new HybridClock({ nodeId: 'n1', now: () => wall })
    expect(clock.now()).toEqual({ ts: 1000, c: 0, node: 'n1' })
    expect(clock.now()).toEqual({ ts: 1000, c: 1, node: 'n1' })
    wall = 1005
    expect(clock.now()).toEqual({ ts: 1005, c: 0, node: 'n1' })
  })

  it('stamps a local write after a received version above it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5000 }),
        fc.nat(100),
        fc.integer({ min: 0, max: 5000 }),
        (ahead, c, wall) => {
          const clock = new HybridClock({ nodeId: 'a', now: () => wall, maxDriftMs: 5000 })
          const remote = { ts: wall + ahead, c, node: 'z' }
          expect(clock.receive(remote)).toBe('ok')
          expect(compareVersions(clock.now(), remote)).toBeGreaterThan(0)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('rejects a version further ahead than the maximum drift and stays put', () => {
    const clock = new HybridClock({ nodeId: 'a', now: () => 10_000, maxDriftMs: 5000 })
    clock.now()
    expect(clock.receive({ ts: 15_001, c: 0, node: 'b' })).toBe('rejected-drift')
    expect(clock.peek()).toEqual({ ts: 10_000, c: 0 })
    expect(clock.receive({ ts: 15_000, c: 0, node: 'b' })).toBe('ok')
    expect(clock.peek()).toEqual({ ts: 15_000, c: 0 })
  })

  it('orders versions totally: antisymmetric, transitive, and equal only when identical', () => {
    const version = fc.record({
      ts: fc.integer({ min: 0, max: 3 }),
      c: fc.integer({ min: 0, max: 3 }),
      node: fc.constantFrom('a', 'b', 'B', 'node-1', 'node-10'),
    })
    fc.assert(
      fc.property(version, version, version, (a, b, c) => {
        expect(Math.sign(compareVersions(a, b)) + Math.sign(compareVersions(b, a))).toBe(0)
        expect(compareVersions(a, b) === 0).toBe(a.ts === b.ts && a.c === b.c && a.node === b.node)
        if (compareVersions(a, b) <= 0 && compareVersions(b, c) <= 0)
          expect(compareVersions(a, c)).toBeLessThanOrEqual(0)
      }),
      { numRuns: 500 },
    )
  })
})

describe('HybridClock against a member sending versions at the edge of the bounds', () => {
  const D = 5000
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('remote' as const),
      lead: fc.oneof(fc.integer({ min: -10_000, max: D + 5 }), fc.constantFrom(D - 1, D, D + 1)),
      c: fc.oneof(fc.constantFrom(0, MAX_COUNTER - 1, MAX_COUNTER), fc.integer({ min: 0, max: MAX_COUNTER })),
    }),
    fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ kind: fc.constant('local' as const) }),
  )

  it('issues only versions a peer with the same rules and wall clock accepts, above every version it accepted', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), async (ops) => {
        let wall = 1_800_000_000_000
        const clock = new HybridClock({
          nodeId: 'me',
          now: () => wall,
          maxDriftMs: D,
          sleep: async (ms) => {
            wall += ms
          },
        })
        const peer = new HybridClock({ nodeId: 'peer', now: () => wall, maxDriftMs: D })
        let highest: Version | undefined
        for (const step of [...ops, { kind: 'local' as const }]) {
          if (step.kind === 'tick') wall += step.ms
          else if (step.kind === 'remote') {
            const remote = { ts: wall + step.lead, c: step.c, node: 'attacker' }
            if (clock.receive(remote) === 'ok' && (!highest || compareVersions(remote, highest) > 0))
              highest = remote
          } else {
            const issued = await clock.next()
            expect(Number.isSafeInteger(issued.c) && issued.c >= 0 && issued.c <= MAX_COUNTER).toBe(true)
            expect(peer.check(issued), `${JSON.stringify(issued)} at wall ${wall}`).toBe('ok')
            if (highest) expect(compareVersions(issued, highest)).toBeGreaterThan(0)
            highest = issued
          }
        }
      }),
      { numRuns: 500 },
    )
  })

  it('moves to the next millisecond when a peer spent the counter, and a peer merges what follows', async () => {
    const a = await openReplica('node-a', { clock: new HybridClock({ nodeId: 'node-a' }), now: Date.now })
    const b = await openReplica('node-b', { clock: new HybridClock({ nodeId: 'node-b' }), now: Date.now })
    const hostile: Change = {
      kind: 'definition',
      id: 'bait',
      version: { ts: Date.now() + 4900, c: MAX_COUNTER, node: 'node-x' },
      value: definition('bait'),
    }
    expect(await a.apply([hostile])).toEqual(['applied'])
    const written = await a.put('definition', definition('after'))
    expect(written.version).toMatchObject({ ts: hostile.version.ts + 1, c: 0 })
    expect(await b.apply([written])).toEqual(['applied'])
  })
})
