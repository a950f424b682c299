export interface ResponseCacheInit {
  /**
   * Most answers kept. Bounds the memory a client can make the agent use by asking many different
   * queries (each distinct filter combination is a key); the least recently used answer goes first.
   * @default 4096
   */
  maxEntries?: number
  /**
   * Most bytes kept over all answers. An answer larger than this is served but not kept.
   * @default 64 MiB
   */
  maxBytes?: number
}

export const DEFAULT_CACHE_ENTRIES = 4096
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024

/**
 * Serialized answers (the response bytes) by a normalized query key, least recently used first out.
 * The owner clears it when what the answers were built from changes; in between, a lookup costs a
 * Map get instead of a JSON.stringify of every instance in the answer.
 */
export class ResponseCache {
  readonly maxEntries: number
  readonly maxBytes: number
  hits = 0
  misses = 0
  /** Insertion order is recency order: a hit moves its key to the end. */
  readonly #entries = new Map<string, Buffer>()
  #bytes = 0

  constructor(init: ResponseCacheInit = {}) {
    this.maxEntries = init.maxEntries ?? DEFAULT_CACHE_ENTRIES
    this.maxBytes = init.maxBytes ?? DEFAULT_CACHE_BYTES
  }

  get size(): number {
    return this.#entries.size
  }

  get bytes(): number {
    return this.#bytes
  }

  /** The cached answer for `key`, else `build()`'s, kept for next time. */
  get(key: string, build: () => Buffer): Buffer {
    const held = this.#entries.get(key)
    if (held !== undefined) {
      this.hits++
      // Move to the most recent end (a Map keeps insertion order).
      if (this.#entries.size > 1) {
        this.#entries.delete(key)
        this.#entries.set(key, held)
      }
      return held
    }
    this.misses++
    const built = build()
    this.#put(key, built)
    return built
  }

  clear(): void {
    this.#entries.clear()
    this.#bytes = 0
  }

  #put(key: string, value: Buffer): void {
    if (value.length > this.maxBytes || this.maxEntries === 0) return
    this.#entries.set(key, value)
    this.#bytes += value.length
    while (this.#entries.size > this.maxEntries || this.#bytes > this.maxBytes) {
      const [oldest, bytes] = this.#entries.entries().next().value as [string, Buffer]
      this.#entries.delete(oldest)
      this.#bytes -= bytes.length
    }
  }
}
