import type { Static, TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { type ValueError, ValueErrorType } from '@sinclair/typebox/errors'
import { ValidationError } from './errors.ts'
import { fieldPath, pointerSegments, quoteName } from './field-path.ts'
import { PATTERN_RULES } from './primitives.ts'

/** Validates `value` against a compiled schema and returns it typed, or throws a ValidationError. */
export type Checker<T extends TSchema> = (value: unknown, field: string) => Static<T>

/**
 * Compiles `schema` once. The fast path is the generated `Check` function (well under a microsecond
 * for a typical entity); TypeBox's error iterator, which is much slower, runs only on failure.
 */
export function compileChecker<T extends TSchema>(schema: T): Checker<T> {
  const compiled = TypeCompiler.Compile(schema)
  return (value, field) => {
    if (compiled.Check(value)) return value
    throw toValidationError(compiled.Errors(value)[Symbol.iterator](), value, field)
  }
}

/** At most this many unknown field names go into one message (a hostile peer may send thousands). */
const MAX_NAMED_FIELDS = 5

/** Turns TypeBox's first error into one readable message naming the field by its dotted path. */
function toValidationError(errors: Iterator<ValueError>, root: unknown, rootField: string): ValidationError {
  const first = errors.next()
  if (first.done) return new ValidationError(`${rootField} is invalid`, rootField)
  const error = first.value
  const field = fieldPath(rootField, pointerSegments(error.path), root)
  if (error.type === ValueErrorType.ObjectAdditionalProperties) {
    // Name the object's other unknown fields too: they are often typos of one kind.
    const parent = parentPointer(error.path)
    const names = [quoteLastKey(error.path)]
    for (let next = errors.next(); !next.done && names.length < MAX_NAMED_FIELDS; next = errors.next()) {
      const e = next.value
      if (e.type === ValueErrorType.ObjectAdditionalProperties && parentPointer(e.path) === parent) {
        names.push(quoteLastKey(e.path))
      }
    }
    const noun = names.length === 1 ? 'field' : 'fields'
    return new ValidationError(
      `${fieldPath(rootField, pointerSegments(parent), root)} has unknown ${noun} ${names.join(', ')}`,
      field,
    )
  }
  if (error.type === ValueErrorType.ObjectRequiredProperty)
    return new ValidationError(`${field} is required`, field)
  return new ValidationError(`${field} ${expectation(error.schema, error.value)}`, field)
}

/** The last key of a pointer, quoted (keys come from untrusted input: see quoteName). */
function quoteLastKey(pointer: string): string {
  return quoteName(pointerSegments(pointer).at(-1) ?? '')
}

/** What a value of `schema` must look like, in words. */
function expectation(schema: TSchema, value: unknown): string {
  const literals = schema.anyOf as TSchema[] | undefined
  if (literals?.every((s) => s.const !== undefined))
    return `must be one of ${literals.map((s) => s.const).join(', ')}`
  switch (schema.type) {
    case 'string': {
      if (typeof value !== 'string') return 'must be a string'
      const rule = typeof schema.pattern === 'string' ? PATTERN_RULES.get(schema.pattern) : undefined
      if (value === '' && schema.minLength === 1) return 'must be a non-empty string'
      return rule ?? `must match ${schema.pattern}`
    }
    case 'integer':
      return schema.minimum !== undefined && schema.maximum !== undefined
        ? `must be an integer ${schema.minimum}-${schema.maximum}`
        : 'must be an integer'
    case 'number':
      return 'must be a number'
    case 'boolean':
      return 'must be true or false'
    case 'array':
      return 'must be an array'
    case 'object':
      return 'must be an object'
    default:
      return 'is invalid'
  }
}

function parentPointer(pointer: string): string {
  return pointer.slice(0, pointer.lastIndexOf('/'))
}
