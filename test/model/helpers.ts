import { expect } from 'vitest'
import { ValidationError } from '../../src/model/index.ts'

/** Runs `fn`, expects a ValidationError and returns it for closer checks. */
export function validationError(fn: () => unknown): ValidationError {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError)
    expect((e as ValidationError).name).toBe('ValidationError')
    return e as ValidationError
  }
  throw new Error('expected a ValidationError, nothing was thrown')
}

/** Asserts the error's field and that its message names that field. */
export function expectFieldError(
  fn: () => unknown,
  field: string,
  message?: string | RegExp,
): ValidationError {
  const error = validationError(fn)
  expect(error.field).toBe(field)
  if (message === undefined) expect(error.message).toContain(field)
  else if (typeof message === 'string') expect(error.message).toBe(message)
  else expect(error.message).toMatch(message)
  return error
}

/** Equal value and equal key order (replicas compare serialised bytes). */
export function expectExactly(actual: unknown, expected: unknown): void {
  expect(actual).toStrictEqual(expected)
  expect(JSON.stringify(actual)).toBe(JSON.stringify(expected))
}
