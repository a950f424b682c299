import type { LivenessStatus } from './liveness-state.ts'

/**
 * What the failure detector decided about one beat frame. Doubles as a log field and a metric label
 * (`counts()`).
 * - `accepted`: counts as hearing from its sender, and from the nodes it relays.
 * - `rejected-*`: garbage (`oversized` > `MAX_BEAT_BYTES`, which also resets the sender's stream;
 *   `malformed` JSON or fields).
 * - `ignored-*`: well-formed but not to be believed (its sender may be a node that restarted with a
 *   new key and whose new record has not reached us yet): `self` claims our node id;
 *   `peer-mismatch` comes from a peer other than the one in that node's record (or, without a
 *   record, than the one already beating for that id); `stale` is older than a beat already heard;
 *   `capacity` names a node with no record when `MAX_UNRECORDED_NODES` such nodes are tracked already.
 */
export type BeatOutcome =
  | 'accepted'
  | 'rejected-oversized'
  | 'rejected-malformed'
  | 'ignored-self'
  | 'ignored-peer-mismatch'
  | 'ignored-stale'
  | 'ignored-capacity'

/**
 * Most nodes tracked from beats alone (no node record yet). Bounds the memory a peer can make us use
 * by beating for made-up node ids; such nodes are forgotten once unreachable.
 */
export const MAX_UNRECORDED_NODES = 1024

/** Longest run of digest mismatches between two `digest:mismatch` events for one peer (backoff cap). */
export const MAX_MISMATCH_BEATS = 64

export const BEAT_OUTCOMES: readonly BeatOutcome[] = [
  'accepted',
  'rejected-oversized',
  'rejected-malformed',
  'ignored-self',
  'ignored-peer-mismatch',
  'ignored-stale',
  'ignored-capacity',
]

/** Payload of `node:alive`, `node:suspect` and `node:unreachable`. */
export interface LivenessChange {
  nodeId: string
  /** Local time we last heard from the node (beat received, or `lastHeartbeat` of its record), ms. */
  lastSeenMs: number
  /** The status before; undefined the first time we classify the node. */
  previous: LivenessStatus | undefined
}

export interface DigestMismatch {
  /** The peer to sync with (the directly connected peer the beat came from). */
  peerId: string
  nodeId: string
}

export interface FailureDetectorEvents {
  'node:alive': [change: LivenessChange]
  'node:suspect': [change: LivenessChange]
  'node:unreachable': [change: LivenessChange]
  /** A peer's replica digest differed from ours for `digestMismatchBeats` beats in a row: sync with it. */
  'digest:mismatch': [mismatch: DigestMismatch]
  /** A node's last beat carried our digest and the one before did not, or the other way round. */
  'node:sync': [change: { nodeId: string; inSync: boolean }]
}

/** One row of `snapshot()`. */
export interface LivenessEntry {
  nodeId: string
  status: LivenessStatus
  /** max(record `lastHeartbeat`, last beat received), local ms. For the API's `lastHeartbeat`. */
  lastSeenMs: number
  /** When the last accepted beat arrived, local ms. */
  lastBeatMs: number | undefined
  /** The peer its beats come from. */
  peerId: string | undefined
}
