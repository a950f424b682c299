/**
 * Thrown for any entity, request or document that breaks the model's rules.
 *
 * `name` is stable so callers (the HTTP layer, gossip validators) can map it to a 400 / a dropped
 * message without `instanceof` across module copies. `field` is the dotted path of the offending
 * value (`definition.image.name`, `definitions[1].ports[0].host`); for document syntax errors it is
 * the file name. The message always names the field, so it can be shown to a user as is.
 */
export class ValidationError extends Error {
  override readonly name = 'ValidationError'
  readonly field: string

  constructor(message: string, field: string) {
    super(message)
    this.field = field
  }
}

/** Shorthand for the common "`<field> <problem>`" message shape. */
export function invalid(field: string, problem: string): ValidationError {
  return new ValidationError(`${field} ${problem}`, field)
}
