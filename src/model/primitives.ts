import { Type } from '@sinclair/typebox'
import { invalid } from './errors.ts'
import { IDENTIFIER_PATTERN, IDENTIFIER_RULE } from './ids.ts'

// Shared field schemas. Rules JSON Schema cannot express (absolute URL, real calendar date,
// url/parts agreement) are checked in code after the compiled schema check passes.

/** RFC 3339, UTC (`Z`), optional fraction up to nanoseconds: `Date#toISOString()` and Go's `time.Time`. */
export const TIMESTAMP_PATTERN = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?Z$'
/** RFC 3986 scheme. */
export const SCHEME_PATTERN = '^[A-Za-z][A-Za-z0-9+.-]*$'
/** A bare host name: anything that would change the URL's shape (port, path, userinfo, IPv6) is excluded. */
export const HOST_PATTERN = '^[^\\s/?#@:\\[\\]\\\\]+$'
/** A URL path: no whitespace, and no `?`/`#` that would turn part of it into a query or fragment. */
export const PATH_PATTERN = '^[^\\s?#\\\\]*$'
/** URLs are stored as given, so stray whitespace is refused rather than silently trimmed. */
export const URL_PATTERN = '^\\S+$'

/** Readable rule for each pattern, used by check.ts to turn a failed `pattern` into English. */
export const PATTERN_RULES: ReadonlyMap<string, string> = new Map([
  [IDENTIFIER_PATTERN, `must match ${IDENTIFIER_RULE}`],
  [TIMESTAMP_PATTERN, 'must be an RFC 3339 UTC timestamp like 2025-01-31T12:00:00.000Z'],
  [SCHEME_PATTERN, 'must be a URL scheme like http, https or grpc'],
  [HOST_PATTERN, 'must be a host name without scheme, port or path (IPv6 addresses go in ip)'],
  [PATH_PATTERN, 'must be a URL path without whitespace, "?", "#" or "\\"'],
  [URL_PATTERN, 'must be a URL without whitespace'],
])

export const IdentifierSchema = Type.String({ pattern: IDENTIFIER_PATTERN, description: IDENTIFIER_RULE })
export const PortSchema = Type.Integer({ minimum: 1, maximum: 65535 })
export const NonEmptyStringSchema = Type.String({ minLength: 1 })
export const TimestampSchema = Type.String({ pattern: TIMESTAMP_PATTERN })
export const UrlSchema = Type.String({ minLength: 1, pattern: URL_PATTERN })

/** The schema checks a timestamp's shape; this also refuses impossible dates such as month 13. */
export function assertTimestamp(value: string, field: string): void {
  if (Number.isNaN(Date.parse(value))) throw invalid(field, 'must be a real date and time')
}
