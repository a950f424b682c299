import {
  type Instance,
  instanceFromRegistration,
  instanceIdForUrl,
  parseInstance,
} from '../../model/index.ts'
import { NotFoundError } from '../errors.ts'
import {
  DeletedSchema,
  errorResponses,
  IdParamsSchema,
  InstanceListSchema,
  InstanceQuerySchema,
  NoQuerySchema,
  RegisteredSchema,
  RegisterInstanceBodySchema,
} from '../schemas.ts'
import type { RegistryApp, RouteDeps } from '../types.ts'
import { sendJsonBytes } from './send.ts'

const tags = ['instances']
const security = [{ bearerAuth: [] }]

export function instanceRoutes(app: RegistryApp, { replica, self, read }: RouteDeps): void {
  app.put(
    '/registry-svc/instance',
    {
      config: { mutating: true, bodyField: 'instance' },
      schema: {
        operationId: 'registerInstance',
        summary: 'Register a service instance (idempotent: keyed by URL)',
        description:
          'Answers once the instance is durable in LevelDB; it is then gossiped to every agent. A new instance starts with status Unknown; registering an existing one again keeps its status and details.',
        tags,
        querystring: NoQuerySchema,
        security,
        body: RegisterInstanceBodySchema,
        response: { 201: RegisteredSchema, ...errorResponses(400, 401, 413, 415) },
      },
    },
    async (request, reply) => {
      const registered = instanceFromRegistration(request.body, { nodeUrl: self.selfUrl, now: new Date() })
      const stored = keepHealth(registered, replica.get('instance', registered.id))
      await replica.put('instance', stored)
      return reply.code(201).send({ instance: stored })
    },
  )

  app.get(
    '/registry-svc/instances',
    {
      schema: {
        operationId: 'listInstances',
        summary: 'List service instances matching every given filter, ordered by id',
        tags,
        querystring: InstanceQuerySchema,
        response: { 200: InstanceListSchema, ...errorResponses(400) },
      },
    },
    (request, reply) => {
      sendJsonBytes(reply, read.instancesAnswer(request.query))
    },
  )

  app.delete(
    '/registry-svc/instance/:id',
    {
      config: { mutating: true },
      schema: {
        operationId: 'removeInstance',
        summary: 'Remove a service instance',
        tags,
        querystring: NoQuerySchema,
        security,
        params: IdParamsSchema,
        response: { 204: DeletedSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      if ((await replica.remove('instance', id)) === undefined) throw new NotFoundError('instance', id)
      return reply.code(204).send(null)
    },
  )
}

/**
 * A registration of an instance already held at the same address (same canonical URL) is a refresh, not a new instance: the
 * status and details its owner's health probe wrote are kept, so a lookup filtering on `Healthy` does
 * not lose it until the next probe.
 */
function keepHealth(registered: Instance, existing: Instance | undefined): Instance {
  if (existing === undefined || instanceIdForUrl(existing.url) !== instanceIdForUrl(registered.url))
    return registered
  return parseInstance({ ...registered, status: existing.status, details: existing.details })
}
