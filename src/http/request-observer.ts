import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from '../support/logger.ts'
import type { HttpError } from './errors.ts'
import type { HttpMetrics } from './metrics.ts'

/**
 * Counts every answered request in the metrics (by route pattern: requests that matched no route are
 * `unmatched`, so raw URLs never become label values) and, when `logRequests`, logs one line per
 * request: at `info` for writes and errors, at `debug` for successful reads.
 */
export class RequestObserver {
  readonly #metrics: HttpMetrics
  readonly #logRequests: boolean
  /** The catalogue error a request was answered with, for its log line. */
  readonly #failures = new WeakMap<FastifyRequest, HttpError>()

  constructor(metrics: HttpMetrics, logRequests: boolean) {
    this.#metrics = metrics
    this.#logRequests = logRequests
  }

  failed(request: FastifyRequest, error: HttpError): void {
    this.#failures.set(request, error)
  }

  /** The `onResponse` hook. */
  readonly onResponse = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    const route = request.is404 ? 'unmatched' : (request.routeOptions.url ?? 'unmatched')
    this.#metrics.observeRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000)
    if (this.#logRequests) this.#log(request, reply, route)
    done()
  }

  #log(request: FastifyRequest, reply: FastifyReply, route: string): void {
    const quiet = reply.statusCode < 400 && request.routeOptions.config.mutating !== true
    const level = quiet ? 'debug' : 'info'
    const log = request.log as unknown as Logger // the agent's pino logger (app.ts: loggerInstance)
    if (!log.isLevelEnabled(level)) return
    const error = this.#failures.get(request)
    const fields = {
      method: request.method,
      url: request.url.length > 500 ? `${request.url.slice(0, 500)}…` : request.url,
      route,
      statusCode: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 100) / 100,
      ...(error === undefined ? {} : { error: error.message, code: error.code }),
    }
    log[level](fields, 'request')
  }
}
