import { APPLY_OUTCOMES, type ApplyOutcome } from '../../replica/replica.ts'
import type { Logger } from '../../support/logger.ts'
import { isFrameRejection, SYNC_FAILURES, type SyncFailure } from './errors.ts'
import type { SessionResult } from './session.ts'

/** How a session ended. Doubles as a log field and a metric label. */
export type SyncOutcome = 'in-sync' | 'repaired' | 'failed'

/** `client`: this node dialled (`syncWith`, on connect, periodic); `server`: the peer did. */
export type SyncRole = 'client' | 'server'

/** One finished session, as emitted with `peer:synced`. */
export interface SyncReport {
  /** Peer id string. */
  peer: string
  role: SyncRole
  outcome: SyncOutcome
  /** Why it failed (only when `outcome` is `failed`). */
  reason?: SyncFailure
  /** Request/answer round trips completed. */
  rounds: number
  /** Valid entries received from the peer (merged or not: see `stats.applied`). */
  entriesReceived: number
  entriesSent: number
  /** Frame payload bytes, length prefixes not included. */
  bytesReceived: number
  bytesSent: number
  /** Wall time of the session, ms. */
  ms: number
  /** The session only pulled: this node had just reset its replica under the stale-node rule. */
  pullOnly: boolean
}

/** Counters since start, for the metrics endpoint. Only ever incremented. */
export interface AntiEntropyStats {
  /** Sessions by outcome (both roles). */
  sessions: Record<SyncOutcome, number>
  /** Failed sessions by reason. */
  failures: Record<SyncFailure, number>
  entriesReceived: number
  entriesSent: number
  bytesReceived: number
  bytesSent: number
  /** Frames that broke the protocol (oversized, malformed, unexpected): each ended its session. */
  rejectedFrames: number
  /** Received entries that failed validation and were dropped. */
  rejectedEntries: number
  /** What merging received entries did (`rejected-drift` = versions too far in the future). */
  applied: Record<ApplyOutcome, number>
  /** Times the replica was dropped under the stale-node rule. */
  staleResets: number
}

export function newStats(): AntiEntropyStats {
  return {
    sessions: { 'in-sync': 0, repaired: 0, failed: 0 },
    failures: Object.fromEntries(SYNC_FAILURES.map((f) => [f, 0])) as Record<SyncFailure, number>,
    entriesReceived: 0,
    entriesSent: 0,
    bytesReceived: 0,
    bytesSent: 0,
    rejectedFrames: 0,
    rejectedEntries: 0,
    applied: Object.fromEntries(APPLY_OUTCOMES.map((o) => [o, 0])) as Record<ApplyOutcome, number>,
    staleResets: 0,
  }
}

/** The report of a session that could not start (the unit is stopped). */
export function unrunReport(peer: string, reason: SyncFailure): SyncReport {
  return {
    peer,
    role: 'client',
    outcome: 'failed',
    reason,
    rounds: 0,
    entriesReceived: 0,
    entriesSent: 0,
    bytesReceived: 0,
    bytesSent: 0,
    ms: 0,
    pullOnly: false,
  }
}

/** Failures that are part of normal life (peers leave, both sides dial at once, shutdown): debug level. */
const QUIET_FAILURES = new Set<SyncFailure>(['stopped', 'busy', 'dial-failed'])

/** Counts a finished session in `stats` and logs it (`log` is bound to the peer and role). */
export function accountSession(
  stats: AntiEntropyStats,
  report: SyncReport,
  result: SessionResult,
  log: Logger,
  error: unknown,
): void {
  stats.sessions[report.outcome]++
  stats.entriesReceived += report.entriesReceived
  stats.entriesSent += report.entriesSent
  stats.bytesReceived += report.bytesReceived
  stats.bytesSent += report.bytesSent
  stats.rejectedEntries += result.rejectedEntries
  for (const [outcome, n] of Object.entries(result.applied)) stats.applied[outcome as ApplyOutcome] += n
  const drifted = result.applied['rejected-drift'] ?? 0
  if (drifted > 0) {
    log.warn(
      { drifted },
      'anti-entropy: rejected entries from the peer with versions too far ahead of our clock',
    )
  }
  const overQuota = result.applied['rejected-quota'] ?? 0
  if (overQuota > 0) {
    log.warn(
      { overQuota },
      'anti-entropy: refused entries from the peer past the replica limit (OB_MAX_ENTITIES)',
    )
  }
  if (result.rejectedEntries > 0) {
    log.warn(
      { rejectedEntries: result.rejectedEntries },
      'anti-entropy: dropped invalid entries from the peer',
    )
  }
  // `log` carries the peer and role already; the rest of the report goes into the line.
  const { peer: _peer, role: _role, ...fields } = report
  const { reason } = report
  if (reason === undefined) {
    if (report.outcome === 'repaired') log.info(fields, 'anti-entropy: repaired')
    else log.debug(fields, 'anti-entropy: in sync')
    return
  }
  stats.failures[reason]++
  if (isFrameRejection(reason)) stats.rejectedFrames++
  if (reason === 'internal-error') log.error({ ...fields, err: error }, 'anti-entropy: session failed')
  else if (QUIET_FAILURES.has(reason))
    log.debug({ ...fields, err: errorMessage(error) }, 'anti-entropy: session ended early')
  else log.warn({ ...fields, err: errorMessage(error) }, 'anti-entropy: session failed')
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
