import type { Version } from './version.ts'

/**
 * Last-writer-wins order on versions.
 *
 * Versions are compared by wall-clock part `ts`, then logical counter `c`, then writer node id
 * (plain UTF-16 code unit order, the same on every machine). Two different writes can only carry the
 * same version if one node reused a clock reading (for example it lost its data dir and its clock went
 * back); `compareEntries` then breaks the tie on the encoded entry bytes, so even that case merges the
 * same way everywhere.
 *
 * Because the order is total and the merge keeps the maximum, merging is commutative, associative and
 * idempotent: replicas that received the same set of changes hold the same state, in any arrival order.
 *
 * @returns negative when `a` is older than `b`, 0 when equal, positive when `a` is newer.
 */
export function compareVersions(a: Version, b: Version): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1
  if (a.c !== b.c) return a.c < b.c ? -1 : 1
  if (a.node === b.node) return 0
  return a.node < b.node ? -1 : 1
}

/**
 * Merge order of two changes of one entity. A plain write (put or delete) is ordered by its version.
 * A status write (the owner recording a probe result, `basedOn` set) describes one registration: it is
 * ordered right after the write it is based on, and among status writes of that registration by its own
 * version. So a status write beats the registration it updates and earlier status writes of it, but loses
 * to any later plain write of the entity, whatever their clocks: a delete or re-registration made anywhere
 * after the registration always wins over status writes about it (a probe cannot resurrect a deleted
 * instance, even across a partition). The key (primary version, rank, own version) is a total order, so
 * merging stays commutative, associative and idempotent.
 *
 * @returns negative when `a` sorts before (loses to) `b`, 0 when equal, positive when `a` wins.
 */
export function compareChanges(
  a: { version: Version; basedOn?: Version | undefined },
  b: { version: Version; basedOn?: Version | undefined },
): number {
  const primary = compareVersions(a.basedOn ?? a.version, b.basedOn ?? b.version)
  if (primary !== 0) return primary
  const rankA = a.basedOn === undefined ? 0 : 1
  const rankB = b.basedOn === undefined ? 0 : 1
  if (rankA !== rankB) return rankA - rankB
  return rankA === 0 ? 0 : compareVersions(a.version, b.version)
}

/** Orders two stored entries: by version, then by encoded bytes (see `compareVersions`). */
export function compareEntries(
  a: { version: Version; basedOn?: Version | undefined; encoded: string },
  b: { version: Version; basedOn?: Version | undefined; encoded: string },
): number {
  const byVersion = compareChanges(a, b)
  if (byVersion !== 0) return byVersion
  if (a.encoded === b.encoded) return 0
  return a.encoded < b.encoded ? -1 : 1
}
