/**
 * Why an anti-entropy session failed. Doubles as a log field and a metric label. Append-only.
 * - `timeout`: the session ran longer than `timeoutMs` (includes a peer that never answers).
 * - `stopped`: the unit was stopped while the session ran.
 * - `busy`: a session with that peer was already running (on either side).
 * - `dial-failed`: no stream could be opened (peer gone, protocol not supported).
 * - `closed`: the peer ended or reset the stream before the session was complete.
 * - `oversized-frame`: a frame longer than `maxFrameBytes`, or a malformed length prefix.
 * - `too-many-entries`: the peer sent more entries in one session than a whole replica may hold.
 * - `malformed-frame`: a frame that is not UTF-8 JSON of a known type with valid fields.
 * - `unexpected-frame`: a valid frame of a type not expected at that point of the session.
 * - `remote-error`: the peer answered with an `error` frame.
 * - `internal-error`: a fault on our side (a bug, a failing store); logged with its stack.
 */
export type SyncFailure =
  | 'timeout'
  | 'stopped'
  | 'busy'
  | 'dial-failed'
  | 'closed'
  | 'oversized-frame'
  | 'too-many-entries'
  | 'malformed-frame'
  | 'unexpected-frame'
  | 'remote-error'
  | 'internal-error'

export const SYNC_FAILURES: readonly SyncFailure[] = [
  'timeout',
  'stopped',
  'busy',
  'dial-failed',
  'closed',
  'oversized-frame',
  'too-many-entries',
  'malformed-frame',
  'unexpected-frame',
  'remote-error',
  'internal-error',
]

/** Failures caused by a frame the peer sent: the frame is rejected and counted in `rejectedFrames`. */
export function isFrameRejection(reason: SyncFailure): boolean {
  return (
    reason === 'oversized-frame' ||
    reason === 'too-many-entries' ||
    reason === 'malformed-frame' ||
    reason === 'unexpected-frame'
  )
}

/** Ends a session: `reason` says why (see `SyncFailure`), the message gives the details for the log. */
export class SyncSessionError extends Error {
  override readonly name = 'SyncSessionError'
  readonly reason: SyncFailure

  constructor(reason: SyncFailure, message: string, options?: ErrorOptions) {
    super(message, options)
    this.reason = reason
  }
}

const CLOSED_ERRORS = new Set([
  'UnexpectedEOFError',
  'StreamResetError',
  'StreamStateError',
  'ConnectionClosedError',
  'ConnectionClosingError',
  'MuxerClosedError',
])

/** The failure behind any error thrown out of a session. */
export function failureOf(err: unknown): SyncFailure {
  if (err instanceof SyncSessionError) return err.reason
  const name = (err as { name?: unknown } | null)?.name
  // it-length-prefixed: a length prefix above maxDataLength, or a varint too long to be a length.
  if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError') return 'oversized-frame'
  if (name === 'InvalidMessageLengthError') return 'oversized-frame'
  // The stream ended inside a frame, or was reset or closed under us.
  if (CLOSED_ERRORS.has(name as string)) return 'closed'
  return 'internal-error'
}
