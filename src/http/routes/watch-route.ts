import { TooManyWatchersError } from '../errors.ts'
import type { IndexedAnswer } from '../read-model.ts'
import { EventStreamSchema, errorResponses, WatchQuerySchema } from '../schemas.ts'
import type { RegistryApp, RouteDeps } from '../types.ts'
import { lastEventId, type WatchKind } from '../watch-hub.ts'

/**
 * A watch route with no filters (`?index=` or Last-Event-ID to resume): the nodes, services and
 * definitions watches. Takes a watcher slot, then streams `answer()` as `kind` events (watch-hub.ts).
 */
export function watchRoute(
  app: RegistryApp,
  watches: RouteDeps['watches'],
  url: string,
  kind: WatchKind,
  answer: () => IndexedAnswer,
  docs: { operationId: string; summary: string; description: string; tags: string[] },
): void {
  app.get(
    url,
    {
      schema: {
        ...docs,
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
