import { describe, expect, it } from 'vitest'
import { PeerPenalties } from '../../src/support/peer-penalties.ts'
import { TokenBuckets } from '../../src/support/token-buckets.ts'

describe('PeerPenalties', () => {
  it('adds points that halve every half-life, and remembers a bounded number of peers', () => {
    let now = 0
    const penalties = new PeerPenalties({ halfLifeMs: 1000, maxPeers: 2, now: () => now })
    penalties.add('a', 8)
    now = 1000
    expect(penalties.get('a')).toBeCloseTo(4)
    penalties.add('a', 4)
    now = 3000
    expect(penalties.get('a')).toBeCloseTo(2)
    penalties.add('b', 100)
    penalties.add('c', 50)
    // The weakest of the three is forgotten.
    expect(penalties.get('a')).toBe(0)
    expect(penalties.get('b')).toBe(100)
  })
})

describe('TokenBuckets', () => {
  it('grants a burst, then the rate, per key, with bounded memory', () => {
    let now = 0
    const buckets = new TokenBuckets({ ratePerSecond: 10, burst: 20, maxKeys: 2, now: () => now })
    expect(buckets.take('a', 20)).toBe(true)
    expect(buckets.take('a', 1)).toBe(false)
    expect(buckets.take('b', 5)).toBe(true)
    now = 500
    expect(buckets.take('a', 5)).toBe(true)
    expect(buckets.take('a', 1)).toBe(false)
    // A third key: the map keeps at most two (full buckets first, else the oldest).
    expect(buckets.take('c', 20)).toBe(true)
    now = 10_000
    expect(buckets.take('a', 20)).toBe(true)
  })
})
