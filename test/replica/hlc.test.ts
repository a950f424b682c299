import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { HybridClock } from '../../src/replica/hlc.ts'
import { compareVersions } from '../../src/replica/version.ts'

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
