/**
 * Errors of the liveness units. `name` is stable, so callers can tell them apart without
 * `instanceof` across module copies.
 */

/** Why a beat could not be read. Doubles as a log field and a metric label. */
export type BeatErrorReason = 'oversized' | 'malformed'

/** A frame on the beat protocol is not a beat we can read. */
export class BeatError extends Error {
  override readonly name = 'BeatError'
  readonly reason: BeatErrorReason

  constructor(reason: BeatErrorReason, message: string) {
    super(message)
    this.reason = reason
  }
}
