/**
 * Token buckets by key (e.g. per peer): each key may spend `ratePerSecond` on average and `burst` at
 * once. Memory is bounded: buckets that have refilled are forgotten when more than `maxKeys` exist
 * (a full bucket is what a new key gets anyway).
 */
export class TokenBuckets {
  readonly #rate: number
  readonly #burst: number
  readonly #maxKeys: number
  readonly #now: () => number
  readonly #buckets = new Map<string, { tokens: number; at: number }>()

  constructor(init: { ratePerSecond: number; burst: number; maxKeys?: number; now?: () => number }) {
    this.#rate = init.ratePerSecond
    this.#burst = init.burst
    this.#maxKeys = init.maxKeys ?? 4096
    this.#now = init.now ?? Date.now
  }

  /** Spends `amount` from `key`'s bucket if it holds that much; returns whether it did. */
  take(key: string, amount: number): boolean {
    const now = this.#now()
    const bucket = this.#buckets.get(key) ?? { tokens: this.#burst, at: now }
    bucket.tokens = Math.min(this.#burst, bucket.tokens + ((now - bucket.at) / 1000) * this.#rate)
    bucket.at = now
    const granted = bucket.tokens >= amount
    if (granted) bucket.tokens -= amount
    this.#buckets.set(key, bucket)
    if (this.#buckets.size > this.#maxKeys) this.#forgetFull(now)
    return granted
  }

  #forgetFull(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.#rate >= this.#burst) this.#buckets.delete(key)
    }
    // Every bucket still spending: drop the oldest ones rather than grow (Map keeps insertion order).
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size <= this.#maxKeys) break
      this.#buckets.delete(key)
    }
  }
}
