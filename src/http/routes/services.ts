import { TooManyWatchersError } from '../errors.ts'
import type { IndexedAnswer } from '../read-model.ts'
import {
  EventStreamSchema,
  errorResponses,
  NoQuerySchema,
  ServiceListSchema,
  WatchQuerySchema,
} from '../schemas.ts'
import type { RegistryApp, RouteDeps } from '../types.ts'
import { lastEventId, type WatchKind } from '../watch-hub.ts'
import { sendJsonBytes } from './send.ts'

const tags = ['services']

/**
 * The services summary (every slug with its instance counts by status) and the definitions, as
 * lists and as watches: what the dashboard (`/ui/`) shows without ever asking for every instance.
 */
export function serviceRoutes(app: RegistryApp, { read, watches }: RouteDeps): void {
  app.get(
    '/registry-svc/services',
    {
      schema: {
        operationId: 'listServices',
        summary: 'Every slug with its instance counts by status',
        tags,
        querystring: NoQuerySchema,
        response: { 200: ServiceListSchema },
      },
    },
    (_request, reply) => {
      const { bytes, index } = read.indexedServices()
      reply.header('x-registry-index', String(index))
      sendJsonBytes(reply, bytes)
    },
  )

  watchRoute(app, watches, '/registry-svc/services/watch', 'services', () => read.indexedServices(), {
    operationId: 'watchServices',
    summary: 'Watch the services summary (Server-Sent Events)',
    description: 'The first event at once, then one when the counts change (at most every 250 ms).',
  })
  watchRoute(
    app,
    watches,
    '/registry-svc/definitions/watch',
    'definitions',
    () => read.indexedDefinitions(),
    {
      operationId: 'watchDefinitions',
      summary: 'Watch the definition list (Server-Sent Events)',
      description: 'The first event at once, then one on every definition written or deleted.',
    },
  )
}

function watchRoute(
  app: RegistryApp,
  watches: RouteDeps['watches'],
  url: string,
  kind: WatchKind,
  answer: () => IndexedAnswer,
  docs: { operationId: string; summary: string; description: string },
): void {
  app.get(
    url,
    {
      schema: {
        ...docs,
        tags,
        querystring: WatchQuerySchema,
        response: { 200: EventStreamSchema, ...errorResponses(400, 503) },
      },
    },
    (request, reply) => {
      if (!watches.acquire()) throw new TooManyWatchersError(watches.maxWatchers)
      reply.hijack()
      watches.stream(
        reply.raw,
        kind,
        answer,
        request.query.index === undefined ? lastEventId(request.headers) : Number(request.query.index),
      )
    },
  )
}
