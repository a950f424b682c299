import type { FastifyRequest, FastifySchemaValidationError } from 'fastify'
import { fieldPath, pointerSegments, quoteName } from '../model/field-path.ts'
import { PATTERN_RULES } from '../model/primitives.ts'
import { HTTP_PATTERN_RULES } from './schemas.ts'

/**
 * Turns the schema validator's (ajv's) first error into one message that names the field the way the
 * client spelled it, in the same words as the model's own messages (src/model/check.ts):
 * `instance.port must be an integer 1-65535`, `definition.id must match the identifier rule (…)`,
 * `request body has unknown field "slg"`, `query parameter "slug" is given 2 times; give it at most once`.
 *
 * Ajv runs with `verbose: true`, so each error carries the failing value (`data`) and its schema.
 */
export function validationMessage(
  errors: readonly FastifySchemaValidationError[],
  context: string,
  request: FastifyRequest,
): { message: string; field: string } {
  const error = mostSpecific(errors)
  if (error === undefined) return { message: `${context} is invalid`, field: context }
  const segments = pointerSegments(error.instancePath)
  if (context === 'querystring') return queryMessage(error, segments, request)
  if (context === 'params') {
    const name = segments[0] ?? ''
    return { message: `path parameter ${quoteName(name)} ${problem(error)}`, field: name }
  }
  if (context === 'headers') {
    const name = segments[0] ?? ''
    return { message: `header ${quoteName(name)} ${problem(error)}`, field: name }
  }
  return bodyMessage(error, segments, request)
}

/** At most this many unknown names go into one message (a hostile client may send thousands). */
const MAX_NAMED = 5

type AjvError = FastifySchemaValidationError & { data?: unknown; parentSchema?: Record<string, unknown> }

/**
 * Ajv reports a failed `anyOf` as each alternative's error followed by the `anyOf` itself; the useful
 * one is an alternative's that is not "must be null" (the optional-body alternative).
 */
function mostSpecific(errors: readonly FastifySchemaValidationError[]): AjvError | undefined {
  const useful = errors.filter(
    (e) =>
      e.keyword !== 'anyOf' && e.keyword !== 'oneOf' && !(e.keyword === 'type' && e.params.type === 'null'),
  )
  return (useful[0] ?? errors[0]) as AjvError | undefined
}

function queryMessage(
  error: AjvError,
  segments: string[],
  request: FastifyRequest,
): { message: string; field: string } {
  const query = (request.query ?? {}) as Record<string, unknown>
  if (segments.length === 0 && error.keyword === 'additionalProperties') {
    const known = Object.keys((error.parentSchema?.properties as object | undefined) ?? {})
    const unknown = unknownNames(query, known)
    const noun = unknown.length === 1 ? 'parameter' : 'parameters'
    const hint = known.length === 0 ? 'this route takes none' : `known: ${known.join(', ')}`
    return {
      message: `unknown query ${noun} ${unknown.join(', ')} (${hint})`,
      field: String(error.params.additionalProperty),
    }
  }
  const name = segments[0] ?? ''
  const value = Object.hasOwn(query, name) ? query[name] : undefined
  if (Array.isArray(value)) {
    return {
      message: `query parameter ${quoteName(name)} is given ${value.length} times; give it at most once`,
      field: name,
    }
  }
  return { message: `query parameter ${quoteName(name)} ${problem(error)}`, field: name }
}

function bodyMessage(
  error: AjvError,
  segments: string[],
  request: FastifyRequest,
): { message: string; field: string } {
  const root = request.routeOptions.config.bodyField ?? ''
  const body = request.body
  if (segments.length === 0 && error.keyword === 'type' && body === undefined) {
    return { message: 'request body is missing; send a JSON object', field: root }
  }
  const at = fieldPath(root, segments, body)
  if (error.keyword === 'additionalProperties') {
    const known = Object.keys((error.parentSchema?.properties as object | undefined) ?? {})
    const unknown = unknownNames(error.data, known)
    const noun = unknown.length === 1 ? 'field' : 'fields'
    const field = fieldPath(root, [...segments, String(error.params.additionalProperty)], body)
    return { message: `${at || 'request body'} has unknown ${noun} ${unknown.join(', ')}`, field }
  }
  if (error.keyword === 'required') {
    const field = fieldPath(root, [...segments, String(error.params.missingProperty)], body)
    return { message: `${field} is required`, field }
  }
  return { message: `${at || 'request body'} ${problem(error)}`, field: at }
}

/** The value's unknown keys, quoted, at most MAX_NAMED of them. */
function unknownNames(value: unknown, known: readonly string[]): string[] {
  const keys = value !== null && typeof value === 'object' ? Object.keys(value) : []
  return keys
    .filter((k) => !known.includes(k))
    .slice(0, MAX_NAMED)
    .map((k) => quoteName(k))
}

/** What the value should have been, in words. */
function problem(error: AjvError): string {
  const p = error.params
  const schema = error.parentSchema ?? {}
  switch (error.keyword) {
    case 'type':
      return typeProblem(String(p.type))
    case 'pattern': {
      const rule = PATTERN_RULES.get(String(p.pattern)) ?? HTTP_PATTERN_RULES.get(String(p.pattern))
      return rule ?? `must match ${p.pattern}`
    }
    case 'minLength':
      return error.data === '' ? 'must be a non-empty string' : `must be at least ${p.limit} characters long`
    case 'maxLength':
      return `must be at most ${p.limit} characters long`
    case 'minimum':
    case 'maximum':
      if (schema.minimum !== undefined && schema.maximum !== undefined) {
        return `must be ${schema.type === 'integer' ? 'an integer' : 'a number'} ${schema.minimum}-${schema.maximum}`
      }
      return `must be ${p.comparison} ${p.limit}`
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).join(', ')}`
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`
    case 'minItems':
      return `must have at least ${p.limit} items`
    case 'maxItems':
      return `must have at most ${p.limit} items`
    default:
      return `is invalid (${error.message ?? error.keyword})`
  }
}

function typeProblem(type: string): string {
  switch (type) {
    case 'boolean':
      return 'must be true or false'
    case 'integer':
    case 'object':
    case 'array':
      return `must be an ${type}`
    default:
      return `must be a ${type.replaceAll(',', ' or ')}`
  }
}
