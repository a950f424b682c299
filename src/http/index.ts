import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'

export type { LivenessState } from '../model/index.ts'
export { buildApp, DEFAULT_BODY_LIMIT_BYTES, type HttpAppComponents, type HttpAppInit } from './app.ts'
export {
  BadRequestError,
  BodyTooLargeError,
  ForbiddenError,
  HttpError,
  type HttpErrorCode,
  InternalError,
  InvalidJsonError,
  MethodNotAllowedError,
  NotFoundError,
  NotOwnerError,
  QuotaExceededError,
  RequestValidationError,
  RouteNotFoundError,
  ShuttingDownError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from './errors.ts'
export type { HttpLiveness, LivenessEvent, NodeView } from './liveness-overlay.ts'
export type { AntiEntropyMetricsSource, MetricsSources } from './metrics.ts'
export { ReadModel } from './read-model.ts'
export type { ResponseCacheInit } from './response-cache.ts'
export { ReloadingTokens, Tokens, TokensFileError } from './tokens.ts'
export type { HttpChecks, HttpLifecycle, SelfIdentity } from './types.ts'
export { DEFAULT_MAX_WATCHERS } from './watch-hub.ts'

export interface BoundAddress {
  host: string
  port: number
  /** `http://host:port` (IPv6 hosts in brackets). */
  url: string
}

/**
 * Starts serving `app` on `host:port` (port 0: any free port) and returns the address it is bound to.
 * The agent binds to loopback by default (`OB_HTTP_ADDR`), so reads need no token.
 */
export async function listen(
  app: FastifyInstance,
  { host, port }: { host: string; port: number },
): Promise<BoundAddress> {
  await app.listen({ host, port })
  const address = app.server.address() as AddressInfo
  const bound = address.address
  return {
    host: bound,
    port: address.port,
    url: `http://${bound.includes(':') ? `[${bound}]` : bound}:${address.port}`,
  }
}
