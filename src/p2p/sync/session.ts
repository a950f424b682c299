import type { Change } from '../../replica/change.ts'
import type { DigestTree } from '../../replica/digest.ts'
import type { ApplyOutcome, Replica } from '../../replica/replica.ts'
import type { Logger } from '../../support/logger.ts'
import { encodeDigest } from './messages.ts'

/** What anti-entropy uses of the replica (a test can hand in a real replica or a small fake). */
export type SyncReplica = Pick<
  Replica,
  | 'apply'
  | 'entriesInLeaves'
  | 'digestTree'
  | 'counts'
  | 'clear'
  | 'getMeta'
  | 'putMeta'
  | 'tombstoneGraceMs'
  | 'maxEntities'
>

/** What one session, client or server, needs besides its stream. */
export interface SessionContext {
  replica: SyncReplica
  /** Already bound to the peer. */
  log: Logger
  maxFrameBytes: number
  /** Filled in as the session goes, so a session that fails half-way still accounts for what it did. */
  result: SessionResult
}

/** What a session that ran to its end did. Bytes are counted by the stream. */
export interface SessionResult {
  /** `in-sync` when no entries had to be exchanged, `repaired` when differing leaves were exchanged. */
  outcome: 'in-sync' | 'repaired'
  /** Request/answer round trips. */
  rounds: number
  entriesReceived: number
  entriesSent: number
  /** Received entries dropped because they failed validation. */
  rejectedEntries: number
  /** What merging the received entries did. */
  applied: Partial<Record<ApplyOutcome, number>>
}

export function emptyResult(): SessionResult {
  return {
    outcome: 'in-sync',
    rounds: 0,
    entriesReceived: 0,
    entriesSent: 0,
    rejectedEntries: 0,
    applied: {},
  }
}

export function rootDigest(tree: DigestTree): string {
  return encodeDigest(tree.node(0, 0))
}

/** Entries held, tombstones included. */
export function entryCount(replica: Pick<Replica, 'counts'>): number {
  const c = replica.counts()
  return c.definitions + c.instances + c.nodes + c.tombstones
}

/** Every entry in the given leaf ranges. */
export function* entriesIn(
  replica: Pick<Replica, 'entriesInLeaves'>,
  ranges: ReadonlyArray<readonly [number, number]>,
): Generator<Change> {
  for (const [from, to] of ranges) yield* replica.entriesInLeaves(from, to)
}

/** Logs an entry too large for any frame (it stays out of the exchange; gossip has the same cap). */
export function tooLarge(log: Logger): (change: Change, bytes: number) => void {
  return (change, bytes) =>
    log.warn(
      { kind: change.kind, id: change.id, bytes },
      'anti-entropy: entry too large for a frame, skipped',
    )
}
