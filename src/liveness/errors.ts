/**
 * Errors of the liveness units. `name` is stable, so callers can tell them apart without
 * `instanceof` across module copies.
 */

/** An `Init` option of `Heartbeat` or `FailureDetector` is out of range; the message names it. */
export class LivenessConfigError extends Error {
  override readonly name = 'LivenessConfigError'
  /** The option at fault, e.g. `suspectAfterMs`. */
  readonly option: string

  constructor(option: string, message: string) {
    super(`${option} ${message}`)
    this.option = option
  }
}

/** Why a beat could not be read. Doubles as a log field and a metric label. */
export type BeatErrorReason = 'oversized' | 'malformed'

/** A message on the beats topic is not a beat we can read. */
export class BeatError extends Error {
  override readonly name = 'BeatError'
  readonly reason: BeatErrorReason

  constructor(reason: BeatErrorReason, message: string) {
    super(message)
    this.reason = reason
  }
}

/** Throws `LivenessConfigError` unless `value` is a positive finite number of milliseconds. */
export function assertPositiveMs(option: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new LivenessConfigError(option, `must be a positive number of milliseconds, got ${value}`)
  }
  return value
}
