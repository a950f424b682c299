/**
 * The HTTP API's error catalogue: every error the API answers, in one place. Each is a class with a
 * stable `name` and `code` (log field, metric label, safe to match on) and an HTTP status. The body of
 * every error answer is exactly `{"error": "<message>"}`; the message says what was wrong and, for
 * bad input, names the field.
 *
 * | name                       | code                   | status | when / message                                                       |
 * |----------------------------|------------------------|--------|----------------------------------------------------------------------|
 * | `InvalidJsonError`         | invalid-json           | 400    | body is not JSON: `request body is not valid JSON: <parser detail>`  |
 * | `RequestValidationError`   | validation             | 400    | schema or model rule broken, naming the field: `instance.url must be a string`, `request body has unknown field "x"`, `query parameter "slug" is given 2 times; give it at most once`, `unknown query parameter "foo" (known: …)`, `path parameter "id" must match the identifier rule (…)` |
 * | `BadRequestError`          | bad-request            | 400    | malformed request: bad percent-encoding in the path, a path parameter over 2048 characters, body shorter than Content-Length |
 * | `UnauthorizedError`        | unauthorized           | 401    | a request that needs a token (a write, or any request with `OB_READS_NEED_TOKEN`) without `Authorization: Bearer <token>`, or with a token the agent does not know (also sends `WWW-Authenticate: Bearer`) |
 * | `ForbiddenError`           | forbidden              | 403    | a valid token whose role may not do it: `a reader token cannot change the registry`, `the service token of "orders" cannot register an instance of "billing"` |
 * | `NotFoundError`            | not-found              | 404    | the entity to delete does not exist: `definition "x" not found`      |
 * | `RouteNotFoundError`       | route-not-found        | 404    | no route has this path: `no route GET /x`                            |
 * | `NotOwnerError`            | not-owner              | 409    | a heartbeat sent to an agent that does not own the instance: `instance "x" is owned by the agent at http://…; send its heartbeats there` |
 * | `MethodNotAllowedError`    | method-not-allowed     | 405    | the path exists with other methods (also sends `Allow`): `PATCH is not allowed on /registry-svc/instance (allowed: PUT)` |
 * | `BodyTooLargeError`        | body-too-large         | 413    | body over the limit (`OB_BODY_LIMIT_BYTES`): `request body is larger than the limit of 1048576 bytes` |
 * | `UnsupportedMediaTypeError`| unsupported-media-type | 415    | a body that is not `application/json`: `content-type "text/plain" is not supported; send application/json` |
 * | `QuotaExceededError`       | quota-exceeded         | 507    | the write would take the replica past `OB_MAX_ENTITIES` entries of its kind: `the replica holds 200000 instance entries, its limit (OB_MAX_ENTITIES); delete some first` |
 * | `TooManyWatchersError`     | too-many-watchers      | 503    | every watch and blocking-query slot is taken (`OB_MAX_WATCHERS`); also sends `Retry-After` |
 * | `ShuttingDownError`        | shutting-down          | 503    | a request arriving while the agent closes its HTTP server (also sends `Connection: close`) |
 * | `InternalError`            | internal               | 500    | a failure inside the agent (a bug, or LevelDB failing), never bad input: `internal error; the agent log has the details` (the cause is logged) |
 *
 * `toHttpError` maps anything thrown while handling a request (Fastify's own errors, schema validation
 * failures, the model's `ValidationError`) to one of these; it is used by both the error handler and
 * the not-found handler.
 */
import type { FastifyError, FastifyRequest } from 'fastify'
import { validationMessage } from './validation-messages.ts'

/** Every error code the API answers, with its HTTP status. The README's error table is checked against it. */
export const HTTP_ERROR_STATUS = {
  'invalid-json': 400,
  validation: 400,
  'bad-request': 400,
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  'not-owner': 409,
  'route-not-found': 404,
  'method-not-allowed': 405,
  'body-too-large': 413,
  'unsupported-media-type': 415,
  'quota-exceeded': 507,
  'too-many-watchers': 503,
  'shutting-down': 503,
  internal: 500,
} as const

export type HttpErrorCode = keyof typeof HTTP_ERROR_STATUS

/** Base of the catalogue: an error the API answers with `statusCode` and `{"error": message}`. */
export abstract class HttpError extends Error {
  abstract readonly code: HttpErrorCode
  get statusCode(): number {
    return HTTP_ERROR_STATUS[this.code]
  }
  /** Extra response headers (`Allow`, `WWW-Authenticate`). */
  readonly headers: Readonly<Record<string, string>> = {}
}

export class InvalidJsonError extends HttpError {
  override readonly name = 'InvalidJsonError'
  readonly code = 'invalid-json'
  constructor(detail: string) {
    super(`request body is not valid JSON: ${detail}`)
  }
}

export class RequestValidationError extends HttpError {
  override readonly name = 'RequestValidationError'
  readonly code = 'validation'
  /** Dotted path of the offending value, or the parameter name. */
  readonly field: string
  constructor(message: string, field: string) {
    super(message)
    this.field = field
  }
}

export class BadRequestError extends HttpError {
  override readonly name = 'BadRequestError'
  readonly code = 'bad-request'
}

export class UnauthorizedError extends HttpError {
  override readonly name = 'UnauthorizedError'
  readonly code = 'unauthorized'
  override readonly headers = { 'www-authenticate': 'Bearer' }
}

export class TooManyWatchersError extends HttpError {
  override readonly name = 'TooManyWatchersError'
  readonly code = 'too-many-watchers'
  override readonly headers = { 'retry-after': '5' }
  constructor(max: number) {
    super(`this agent holds ${max} watches and blocking queries, its limit; try again shortly or poll`)
  }
}

export class ForbiddenError extends HttpError {
  override readonly name = 'ForbiddenError'
  readonly code = 'forbidden'
}

export class NotOwnerError extends HttpError {
  override readonly name = 'NotOwnerError'
  readonly code = 'not-owner'
  constructor(id: string, ownerUrl: string | undefined) {
    super(
      ownerUrl === undefined
        ? `instance ${JSON.stringify(id)} has no nodeUrl: no agent checks it, so none takes its heartbeats`
        : `instance ${JSON.stringify(id)} is owned by the agent at ${ownerUrl}; send its heartbeats there`,
    )
  }
}

export class NotFoundError extends HttpError {
  override readonly name = 'NotFoundError'
  readonly code = 'not-found'
  constructor(kind: string, id: string) {
    super(`${kind} ${JSON.stringify(id)} not found`)
  }
}

export class RouteNotFoundError extends HttpError {
  override readonly name = 'RouteNotFoundError'
  readonly code = 'route-not-found'
  constructor(method: string, path: string) {
    super(`no route ${method} ${shorten(path)}`)
  }
}

export class MethodNotAllowedError extends HttpError {
  override readonly name = 'MethodNotAllowedError'
  readonly code = 'method-not-allowed'
  override readonly headers: Record<string, string>
  constructor(method: string, path: string, allowed: readonly string[]) {
    super(`${method} is not allowed on ${shorten(path)} (allowed: ${allowed.join(', ')})`)
    this.headers = { allow: allowed.join(', ') }
  }
}

export class BodyTooLargeError extends HttpError {
  override readonly name = 'BodyTooLargeError'
  readonly code = 'body-too-large'
  constructor(limitBytes: number) {
    super(`request body is larger than the limit of ${limitBytes} bytes (OB_BODY_LIMIT_BYTES)`)
  }
}

export class UnsupportedMediaTypeError extends HttpError {
  override readonly name = 'UnsupportedMediaTypeError'
  readonly code = 'unsupported-media-type'
  constructor(contentType: string | undefined) {
    super(
      contentType === undefined
        ? 'a request body needs Content-Type: application/json'
        : `content-type ${JSON.stringify(shorten(contentType))} is not supported; send application/json`,
    )
  }
}

/** A write that would take the replica past `OB_MAX_ENTITIES` for its kind (the replica's QuotaError). */
export class QuotaExceededError extends HttpError {
  override readonly name = 'QuotaExceededError'
  readonly code = 'quota-exceeded'
}

export class ShuttingDownError extends HttpError {
  override readonly name = 'ShuttingDownError'
  readonly code = 'shutting-down'
  override readonly headers = { connection: 'close' }
  constructor() {
    super('the agent is shutting down; retry on another agent or after it restarts')
  }
}

export class InternalError extends HttpError {
  override readonly name = 'InternalError'
  readonly code = 'internal'
  constructor() {
    super('internal error; the agent log has the details')
  }
}

/** Fastify's own client-error codes and what they become. */
const FASTIFY_ERRORS = new Map<string, (req: FastifyRequest) => HttpError>([
  ['FST_ERR_CTP_BODY_TOO_LARGE', (req) => new BodyTooLargeError(req.routeOptions.bodyLimit)],
  ['FST_ERR_CTP_INVALID_MEDIA_TYPE', (req) => new UnsupportedMediaTypeError(req.headers['content-type'])],
  [
    'FST_ERR_CTP_INVALID_CONTENT_LENGTH',
    () => new BadRequestError('request body size does not match its Content-Length'),
  ],
  ['FST_ERR_CTP_EMPTY_JSON_BODY', () => new InvalidJsonError('the body is empty')],
  ['FST_ERR_CTP_INVALID_JSON_BODY', () => new InvalidJsonError('the body cannot be parsed')],
  ['FST_ERR_BAD_URL', () => new BadRequestError('the request path has invalid percent-encoding')],
  ['FST_ERR_MAX_PARAM_LENGTH', () => new BadRequestError('a path parameter is longer than 2048 characters')],
])

/**
 * What to answer for `err`, thrown while handling `request`. A 5xx comes out only for errors that are
 * neither in the catalogue nor a known client error: bugs.
 */
export function toHttpError(err: unknown, request: FastifyRequest): HttpError {
  if (err instanceof HttpError) return err
  if (!(err instanceof Error)) return new InternalError()
  const e = err as FastifyError
  // The model's ValidationError (matched by name, see src/model/errors.ts).
  if (e.name === 'ValidationError' && typeof (e as { field?: unknown }).field === 'string') {
    return new RequestValidationError(e.message, (e as unknown as { field: string }).field)
  }
  if (e.name === 'QuotaError') return new QuotaExceededError(e.message)
  if (e.validation !== undefined && e.validationContext !== undefined) {
    const { message, field } = validationMessage(e.validation, e.validationContext, request)
    return new RequestValidationError(message, field)
  }
  const known = e.code === undefined ? undefined : FASTIFY_ERRORS.get(e.code)
  if (known !== undefined) return known(request)
  // Any other client error Fastify raises: a 400 with Fastify's message.
  if (
    typeof e.statusCode === 'number' &&
    e.statusCode >= 400 &&
    e.statusCode < 500 &&
    e.code?.startsWith('FST_')
  ) {
    return new BadRequestError(e.message)
  }
  return new InternalError()
}

/** The part of a Fastify reply `sendError` uses (any route's typed reply has it). */
interface ErrorReply {
  code(statusCode: number): ErrorReply
  headers(values: Record<string, string>): ErrorReply
  type(contentType: string): ErrorReply
  send(payload: string): unknown
}

/** Answers `error`: its status, its headers, and the body `{"error": "<message>"}`. */
export function sendError(reply: unknown, error: HttpError): void {
  ;(reply as ErrorReply)
    .code(error.statusCode)
    .headers(error.headers)
    .type('application/json')
    .send(JSON.stringify({ error: error.message }))
}

function shorten(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s
}
