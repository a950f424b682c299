/**
 * Where a replica keeps its entries. Two implementations run through one shared test suite:
 * `LevelStore` (LevelDB, what agents use) and `MemoryStore` (for tests and tools that need no disk).
 *
 * Entries are opaque to the store: a key (`<kind>/<id>`) and the canonical encoded entry. Metadata
 * (node id, last contact with the cluster, ...) lives in a separate keyspace.
 */
export interface ReplicaStore {
  open(): Promise<void>
  close(): Promise<void>
  /** Every entry, in key order. */
  entries(): AsyncIterable<[key: string, encoded: string]>
  /** Writes puts and deletes as one atomic batch: after a crash either all of it is there or none. */
  write(
    puts: ReadonlyArray<readonly [key: string, encoded: string]>,
    deletes: readonly string[],
  ): Promise<void>
  /** Removes every entry (not the metadata). */
  clearEntries(): Promise<void>
  getMeta(key: string): Promise<string | undefined>
  putMeta(key: string, value: string): Promise<void>
}
