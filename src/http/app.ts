import swagger from '@fastify/swagger'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify'
import type { Registry } from 'prom-client'
import type { Replica } from '../replica/replica.ts'
import type { Logger } from '../support/logger.ts'
import { authenticate } from './auth.ts'
import {
  MethodNotAllowedError,
  RouteNotFoundError,
  ShuttingDownError,
  sendError,
  toHttpError,
} from './errors.ts'
import { acceptJsonBodiesOnly } from './json-body.ts'
import type { HttpLiveness } from './liveness-overlay.ts'
import { createMetrics, type MetricsSources } from './metrics.ts'
import { OPENAPI_OPTIONS } from './openapi.ts'
import { ReadModel } from './read-model.ts'
import { RequestObserver } from './request-observer.ts'
import type { ResponseCacheInit } from './response-cache.ts'
import { RouteTable } from './route-table.ts'
import { definitionRoutes } from './routes/definitions.ts'
import { instanceRoutes } from './routes/instances.ts'
import { nodeRoutes } from './routes/nodes.ts'
import { operationRoutes } from './routes/operations.ts'
import { serviceRoutes } from './routes/services.ts'
import { uiRoutes } from './routes/ui.ts'
import { type TokenSource, Tokens } from './tokens.ts'
import type { HttpChecks, HttpLifecycle, RegistryApp, RouteDeps, SelfIdentity } from './types.ts'
import { DEFAULT_MAX_WATCHERS, WatchHub } from './watch-hub.ts'
import './route-config.ts'

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024

export interface HttpAppInit {
  /**
   * An admin token every mutating request may carry (`OB_API_TOKEN`); with `tokens`, added to theirs.
   * @default none
   */
  apiToken?: string | undefined
  /** Tokens with roles (`OB_API_TOKENS_FILE`), reloadable. @default only `apiToken` */
  tokens?: TokenSource
  /** Reads need a token too (`OB_READS_NEED_TOKEN`). @default false */
  readsNeedToken?: boolean
  /**
   * Largest request body, bytes (`OB_BODY_LIMIT_BYTES`); a larger one is answered 413 unread.
   * @default 1 MiB
   */
  bodyLimitBytes?: number
  /**
   * One log line per request (method, URL, route, status, ms, error) through the agent's logger: at
   * `info` for writes and errors, at `debug` for successful reads, which can come by the thousand.
   * @default true
   */
  logRequests?: boolean
  /** Bounds of the cache of serialized instance answers. @default 4096 answers, 64 MiB */
  responseCache?: ResponseCacheInit
  /** Bounds on what one client connection may hold: see `HttpLimits`. */
  limits?: Partial<HttpLimits>
  /** Watch streams and blocking queries open at once (`OB_MAX_WATCHERS`). @default 10000 */
  maxWatchers?: number
}

/**
 * What a client may hold of the HTTP port, so that slow or idle clients (slowloris) cannot keep
 * sockets open for good. Node checks the request timeouts every `checkIntervalMs`.
 */
export interface HttpLimits {
  /** All request headers must arrive within this, ms. */
  headersTimeoutMs: number
  /** The whole request (headers and body) must arrive within this, ms; answers may take longer. */
  requestTimeoutMs: number
  /** An idle keep-alive connection is closed after this, ms. */
  keepAliveTimeoutMs: number
  /** How often Node checks the two request timeouts, ms. */
  checkIntervalMs: number
  /**
   * Connections open at once; more are closed as they arrive. Each watch slot (`maxWatchers`) adds
   * one, since a watch holds its connection.
   */
  maxConnections: number
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  checkIntervalMs: 1_000,
  maxConnections: 1_024,
}

export interface HttpAppComponents {
  replica: Replica
  self: SelfIdentity
  /** The agent's logger; Fastify logs through it (request logs carry a `reqId`). */
  log: Logger
  /** The failure detector; without it nodes have no `liveness` and no instance is overlaid. */
  liveness?: HttpLiveness | undefined
  metricsSources: MetricsSources
  /** The owner's checks, for service heartbeats; without them the heartbeat route answers 404s. */
  checks?: HttpChecks | undefined
  /** Self-preservation, shown by /healthz. */
  lifecycle?: HttpLifecycle | undefined
  /** The read model, when the agent shares it (with DNS); closed with the app. Absent: the app's own. */
  read?: ReadModel
  /** The registry `/metrics` serves, when the agent's other units add metrics to it. */
  metricsRegistry?: Registry
}

/**
 * Builds the HTTP API (README, HTTP API) on the local replica, ready to `listen` (see index.ts); tests
 * use it unbound through `inject`. Closing the app stops its listeners on the replica and liveness.
 */
export async function buildApp(init: HttpAppInit, components: HttpAppComponents): Promise<FastifyInstance> {
  const bodyLimit = init.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES
  const maxWatchers = init.maxWatchers ?? DEFAULT_MAX_WATCHERS
  const limits = {
    ...DEFAULT_HTTP_LIMITS,
    maxConnections: DEFAULT_HTTP_LIMITS.maxConnections + maxWatchers,
    ...init.limits,
  }
  const app: RegistryApp = Fastify({
    http: {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: limits.checkIntervalMs,
    },
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    loggerInstance: components.log as FastifyBaseLogger,
    // Fastify's two lines per request are replaced by one of ours (onResponse hook below).
    logController: new LogController({ disableRequestLogging: true }),
    // Errors raised before routing (bad percent-encoding, over-long parameters) answer like the others.
    frameworkErrors: (err, request, reply) => sendError(reply, toHttpError(err, request)),
    bodyLimit,
    // Requests that arrive while closing get ShuttingDownError (below) instead of Fastify's own 503 body.
    return503OnClosing: false,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 2048 },
    ajv: {
      // Nothing is stripped, coerced or defaulted: a request is taken as sent, or refused.
      // `verbose` puts the failing value and schema into errors, for validation-messages.ts.
      customOptions: {
        removeAdditional: false,
        coerceTypes: false,
        useDefaults: false,
        allErrors: false,
        verbose: true,
      },
    },
  }).withTypeProvider()
  app.server.maxConnections = limits.maxConnections
  // Answers are serialized with JSON.stringify, never by a schema-driven serializer that would
  // silently drop fields the schema does not list (node records carry fields of their agents).
  app.setSerializerCompiler(() => (data) => JSON.stringify(data))
  acceptJsonBodiesOnly(app)

  const routes = new RouteTable()
  app.addHook('onRoute', (route) => routes.add(route.method, route.url))

  await app.register(swagger, OPENAPI_OPTIONS)

  const read = components.read ?? new ReadModel(init.responseCache ?? {}, components)
  const metrics = createMetrics(
    components.metricsSources,
    {
      responseCache: () => {
        const c = read.instanceAnswers
        return { hits: c.hits, misses: c.misses, entries: c.size, bytes: c.bytes }
      },
    },
    components.metricsRegistry,
  )
  const watches = new WatchHub(read, maxWatchers)
  app.addHook('onClose', (_app, done) => {
    read.close()
    done()
  })

  let closing = false
  app.addHook('preClose', (done) => {
    closing = true
    // Streams and blocking queries would keep the server from closing: end and answer them now.
    watches.close()
    done()
  })
  app.addHook('onRequest', (_request, _reply, done) => done(closing ? new ShuttingDownError() : undefined))

  const fixed = Tokens.from(init.apiToken)
  app.decorateRequest('grant', undefined)
  app.addHook(
    'onRequest',
    authenticate(init.tokens ?? { current: () => fixed }, init.readsNeedToken ?? false),
  )

  const observer = new RequestObserver(metrics, init.logRequests ?? true)
  app.addHook('onResponse', observer.onResponse)

  app.setErrorHandler((err, request, reply) => {
    const error = toHttpError(err, request)
    observer.failed(request, error)
    if (error.statusCode >= 500) request.log.error({ err }, 'request failed inside the agent')
    sendError(reply, error)
  })
  app.setNotFoundHandler((request) => {
    const path = request.url.split('?', 1)[0]!
    const allowed = routes.allowedMethods(path)
    throw allowed.length > 0
      ? new MethodNotAllowedError(request.method, path, allowed)
      : new RouteNotFoundError(request.method, path)
  })

  const deps: RouteDeps = {
    replica: components.replica,
    self: components.self,
    read,
    checks: components.checks,
    lifecycle: components.lifecycle,
    watches,
    peersConnected: components.metricsSources.peersConnected,
  }
  definitionRoutes(app, deps)
  instanceRoutes(app, deps)
  nodeRoutes(app, deps)
  serviceRoutes(app, deps)
  uiRoutes(app)
  operationRoutes(app, deps, metrics)

  await app.ready()
  return app as unknown as FastifyInstance
}
