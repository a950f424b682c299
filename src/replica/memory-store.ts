import type { ReplicaStore } from './store.ts'

/** A `ReplicaStore` in a Map: same contract as `LevelStore`, nothing survives the process. */
export class MemoryStore implements ReplicaStore {
  readonly #entries = new Map<string, string>()
  readonly #meta = new Map<string, string>()

  async open(): Promise<void> {}
  async close(): Promise<void> {}

  async *entries(): AsyncIterable<[string, string]> {
    const keys = [...this.#entries.keys()].sort()
    for (const key of keys) yield [key, this.#entries.get(key)!]
  }

  async write(puts: ReadonlyArray<readonly [string, string]>, deletes: readonly string[]): Promise<void> {
    for (const key of deletes) this.#entries.delete(key)
    for (const [key, encoded] of puts) this.#entries.set(key, encoded)
  }

  async clearEntries(): Promise<void> {
    this.#entries.clear()
  }

  async getMeta(key: string): Promise<string | undefined> {
    return this.#meta.get(key)
  }

  async putMeta(key: string, value: string): Promise<void> {
    this.#meta.set(key, value)
  }
}
