/**
 * A version stamps every write (put or delete) of an entity: a hybrid logical clock reading plus the
 * id of the node that wrote it. See `lww.ts` for the order and `hlc.ts` for how readings are made.
 */
export interface Version {
  /** Wall-clock part, milliseconds since the Unix epoch. */
  readonly ts: number
  /** Logical counter: orders events within one millisecond and events that outran the wall clock. */
  readonly c: number
  /** Id of the node whose clock produced this version. */
  readonly node: string
}

/** Compact wire and storage form: `[ts, c, node]`. Append-only: never reorder these fields. */
export type EncodedVersion = readonly [ts: number, c: number, node: string]

export function encodeVersion(v: Version): EncodedVersion {
  return [v.ts, v.c, v.node]
}

export function decodeVersion(e: EncodedVersion): Version {
  return { ts: e[0], c: e[1], node: e[2] }
}
