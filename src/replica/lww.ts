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

/** Orders two stored entries: by version, then by encoded bytes (see `compareVersions`). */
export function compareEntries(
  a: { version: Version; encoded: string },
  b: { version: Version; encoded: string },
): number {
  const byVersion = compareVersions(a.version, b.version)
  if (byVersion !== 0) return byVersion
  if (a.encoded === b.encoded) return 0
  return a.encoded < b.encoded ? -1 : 1
}
