import { type Change, encodeEntry } from './change.ts'
import { isSignedNodeRecord } from './node-signature.ts'
import { compareVersions } from './version.ts'

/** What the merge order reads of a change. */
export type Ordered = Pick<Change, 'kind' | 'version' | 'basedOn' | 'value'>

/**
 * The merge order: the one function that decides which of two changes of one entity wins. Every path
 * that merges — local writes, status writes, gossip, anti-entropy (and what a sync sends back) — calls
 * it; `docs/replication.md` explains the rule.
 *
 * - A plain write (put or delete) is ordered by its version (`compareVersions`).
 * - A status write (`basedOn` set: the owner recording a probe result) describes one registration: it
 *   sorts right after the write it is based on, and among status writes of that registration by its own
 *   version. So it beats the registration and earlier statuses of it, but loses to any later plain write,
 *   whatever the clocks say: a probe cannot resurrect an instance deleted anywhere.
 * - Among writes of a node record, signed records and deletes sort above unsigned records (written by
 *   agents of a release before records were signed, or forged), whatever the versions: once a node
 *   signs, nothing unsigned overrides its record, and an operator's delete still removes it.
 * - Two different changes with the same key can only meet if one node reused a clock reading (it lost
 *   its data dir and its clock went back); the larger encoded bytes win, so even that merges alike
 *   everywhere.
 *
 * The key (primary version, rank, own version, bytes) is a total order and the merge keeps the maximum,
 * so merging is commutative, associative and idempotent. `bytes` lets a caller that already holds the
 * encoded form of a change hand it in; it is only called on a tie.
 *
 * @returns negative when `a` loses to `b`, 0 when they are the same change, positive when `a` wins.
 */
export function compareChanges(
  a: Ordered,
  b: Ordered,
  bytes: (change: Ordered) => string = encodeEntry,
): number {
  if (a.kind === 'node') {
    const byRank = nodeRank(a) - nodeRank(b)
    if (byRank !== 0) return byRank
  }
  const primary = compareVersions(a.basedOn ?? a.version, b.basedOn ?? b.version)
  if (primary !== 0) return primary
  const rankA = a.basedOn === undefined ? 0 : 1
  const rankB = b.basedOn === undefined ? 0 : 1
  if (rankA !== rankB) return rankA - rankB
  if (rankA === 1) {
    const own = compareVersions(a.version, b.version)
    if (own !== 0) return own
  }
  if (a === b) return 0
  const bytesA = bytes(a)
  const bytesB = bytes(b)
  if (bytesA === bytesB) return 0
  return bytesA < bytesB ? -1 : 1
}

/** 1 for a signed node record or a delete, 0 for an unsigned record. */
function nodeRank(change: Ordered): number {
  return change.value === null || isSignedNodeRecord(change.value) ? 1 : 0
}
