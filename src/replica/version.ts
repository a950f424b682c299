/**
 * A version stamps every write (put or delete) of an entity: a hybrid logical clock reading plus the
 * id of the node that wrote it. `hlc.ts` makes readings; `lww.ts` orders whole changes.
 */
export interface Version {
  /** Wall-clock part, milliseconds since the Unix epoch. */
  readonly ts: number
  /** Logical counter: orders events within one millisecond and events that outran the wall clock. */
  readonly c: number
  /** Id of the node whose clock produced this version. */
  readonly node: string
}

/** Largest logical counter a version may carry (a signed 32-bit integer; peers reject larger ones). */
export const MAX_COUNTER = 2 ** 31 - 1
/** Largest wall-clock part: the largest time a JS Date holds. */
export const MAX_TIMESTAMP = 8.64e15

/**
 * Orders versions by wall-clock part `ts`, then logical counter `c`, then writer node id (plain UTF-16
 * code unit order, the same on every machine): a total order.
 *
 * @returns negative when `a` is older than `b`, 0 when equal, positive when `a` is newer.
 */
export function compareVersions(a: Version, b: Version): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1
  if (a.c !== b.c) return a.c < b.c ? -1 : 1
  if (a.node === b.node) return 0
  return a.node < b.node ? -1 : 1
}
