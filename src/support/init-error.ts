/**
 * A unit was built with an option out of range. Thrown by constructors and factories; the message
 * names the option and what it must be, e.g. `suspectAfterMs must be a positive number of milliseconds,
 * got 0`. `name` is stable, so callers can tell it apart without `instanceof` across module copies.
 */
export class InitError extends Error {
  override readonly name = 'InitError'
  /** The option at fault, e.g. `suspectAfterMs`. */
  readonly option: string

  constructor(option: string, problem: string) {
    super(`${option} ${problem}`)
    this.option = option
  }
}

/** `value`, or an `InitError` unless it is a positive finite number of milliseconds. */
export function positiveMs(option: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new InitError(option, `must be a positive number of milliseconds, got ${value}`)
  }
  return value
}

/** `value`, or an `InitError` unless it is a safe integer of at least `min`. */
export function integerAtLeast(option: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new InitError(option, `must be an integer of at least ${min}, got ${value}`)
  }
  return value
}
