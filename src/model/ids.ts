import { invalid } from './errors.ts'

/**
 * Entity ids, slugs and node ids: 1–128 letters, digits, `.`, `_`, `~`, `:` or `-` (the same rule for every identifier in the API and on the wire).
 * The set is URL-path safe, so ids can go into `/registry-svc/instance/{id}` unescaped, and excludes
 * `/` and control characters, so ids can also be used as LevelDB key segments.
 * A plain string so it can be a TypeBox/JSON-Schema `pattern` as well as a RegExp.
 */
export const IDENTIFIER_PATTERN = '^[A-Za-z0-9._~:-]{1,128}$'

/** The rule in words, for error messages and schema descriptions. */
export const IDENTIFIER_RULE = 'the identifier rule (1-128 letters, digits, ".", "_", "~", ":" or "-")'

const IDENTIFIER_RE = new RegExp(IDENTIFIER_PATTERN)

export function isIdentifier(s: unknown): s is string {
  return typeof s === 'string' && IDENTIFIER_RE.test(s)
}

export function assertIdentifier(value: unknown, field: string): string {
  if (typeof value !== 'string') throw invalid(field, 'must be a string')
  if (!IDENTIFIER_RE.test(value)) throw invalid(field, `must match ${IDENTIFIER_RULE}`)
  return value
}
