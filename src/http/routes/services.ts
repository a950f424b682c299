import { NoQuerySchema, ServiceListSchema } from '../schemas.ts'
import type { RegistryApp, RouteDeps } from '../types.ts'
import { sendJsonBytes } from './send.ts'
import { watchRoute } from './watch-route.ts'

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
    tags,
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
      tags,
    },
  )
}
