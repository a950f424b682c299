import { afterEach, describe, expect, it, vi } from 'vitest'
import { TombstonePurger } from '../../src/replica/tombstone-purger.ts'
import { testLogger } from '../liveness/fixtures.ts'

describe('TombstonePurger', () => {
  afterEach(() => vi.useRealTimers())

  it('purges every interval while started, once however often it is started, and not after stop', async () => {
    vi.useFakeTimers()
    let purges = 0
    const purger = new TombstonePurger(
      { intervalMs: 1000 },
      {
        replica: {
          purgeTombstones: async () => {
            purges++
            return 0
          },
        },
        log: testLogger(),
      },
    )
    purger.start()
    purger.start()
    expect(purger.isStarted).toBe(true)
    await vi.advanceTimersByTimeAsync(3500)
    expect(purges).toBe(3)
    purger.stop()
    purger.stop()
    expect(purger.isStarted).toBe(false)
    await vi.advanceTimersByTimeAsync(5000)
    expect(purges).toBe(3)
  })
})
