/**
 * Anti-entropy (docs/protocols.md): digest-tree comparison with peers over `SYNC_PROTOCOL`, exchanging only
 * the entries of differing leaves. `new AntiEntropy(init, components)` builds the unit; `messages.ts`
 * describes the wire protocol; `stale.ts` the stale-node rule (docs/replication.md).
 */
export {
  AntiEntropy,
  type AntiEntropyComponents,
  type AntiEntropyEvents,
  type AntiEntropyInit,
  DEFAULT_SYNC_INTERVAL_MS,
  DEFAULT_SYNC_TIMEOUT_MS,
  type SyncLibp2p,
} from './anti-entropy.ts'
export { SYNC_FAILURES, type SyncFailure, SyncSessionError } from './errors.ts'
export type { Frame, FrameType } from './messages.ts'
export type { AntiEntropyStats, SyncOutcome, SyncReport, SyncRole } from './report.ts'
export type { SyncReplica } from './session.ts'
export { checkStale, isStale, LAST_CONTACT_META, readLastContact, type StaleCheck } from './stale.ts'
