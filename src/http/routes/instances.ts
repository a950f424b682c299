import {
  type Instance,
  instanceFromRegistration,
  instanceIdForUrl,
  normaliseNodeUrl,
  parseInstance,
} from '../../model/index.ts'
import { assertServiceSlug } from '../auth.ts'
import { NotFoundError, NotOwnerError } from '../errors.ts'
import {
  DeletedSchema,
  errorResponses,
  HeartbeatBodySchema,
  HeartbeatTakenSchema,
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

export function instanceRoutes(app: RegistryApp, { replica, self, read, checks }: RouteDeps): void {
  app.put(
    '/registry-svc/instance',
    {
      config: { mutating: true, serviceMayWrite: true, bodyField: 'instance' },
      schema: {
        operationId: 'registerInstance',
        summary: 'Register a service instance (idempotent: keyed by URL)',
        description:
          'Answers once the instance is durable in LevelDB; it is then gossiped to every agent. A new instance starts with status Unknown; registering an existing one again at the same address on this agent keeps its status and details.',
        tags,
        querystring: NoQuerySchema,
        security,
        body: RegisterInstanceBodySchema,
        response: { 201: RegisteredSchema, ...errorResponses(400, 401, 403, 413, 415) },
      },
    },
    async (request, reply) => {
      const grant = request.grant
      const registered = instanceFromRegistration(request.body, {
        nodeUrl: self.selfUrl,
        now: new Date(),
        slug: grant?.role === 'service' ? grant.slug : undefined,
      })
      const existing = replica.get('instance', registered.id)
      assertServiceSlug(grant, registered.slug, 'register an instance')
      // Nor take over an instance another service registered.
      if (existing !== undefined) assertServiceSlug(grant, existing.slug, 'register over an instance')
      await replica.put('instance', registered)
      const kept = keptHealth(registered, existing, self.selfUrl)
      const stored = ((kept && (await replica.putStatus(kept))?.value) as Instance | undefined) ?? registered
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

  app.put(
    '/registry-svc/instance/:id/heartbeat',
    {
      config: { mutating: true, serviceMayWrite: true, bodyField: 'heartbeat' },
      schema: {
        operationId: 'instanceHeartbeat',
        summary: 'Renew an instance: its service is alive (ttl checks), optionally with a status',
        description:
          'Send it to the agent that owns the instance (its nodeUrl), at least every ttlMs for a ttl check. The status (Healthy when absent) and details are what ttl and none checks report; tcp and http checks decide by themselves. Written to the registry only when the status or details change, or once an hour.',
        tags,
        querystring: NoQuerySchema,
        security,
        params: IdParamsSchema,
        body: HeartbeatBodySchema,
        response: { 204: HeartbeatTakenSchema, ...errorResponses(400, 401, 403, 404, 409, 413, 415) },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      const instance = replica.get('instance', id)
      if (instance === undefined || checks === undefined) throw new NotFoundError('instance', id)
      assertServiceSlug(request.grant, instance.slug, 'renew an instance')
      const body = request.body ?? {}
      const outcome = checks.renew(id, {
        ...(body.status === undefined ? {} : { status: body.status }),
        ...(body.details === undefined ? {} : { details: body.details }),
      })
      if (outcome === 'unknown') throw new NotFoundError('instance', id)
      if (outcome === 'not-owned') throw new NotOwnerError(id, instance.nodeUrl)
      return reply.code(204).send(null)
    },
  )

  app.delete(
    '/registry-svc/instance/:id',
    {
      config: { mutating: true, serviceMayWrite: true },
      schema: {
        operationId: 'removeInstance',
        summary: 'Remove a service instance',
        tags,
        querystring: NoQuerySchema,
        security,
        params: IdParamsSchema,
        response: { 204: DeletedSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      const existing = replica.get('instance', id)
      if (existing !== undefined) assertServiceSlug(request.grant, existing.slug, 'remove an instance')
      if ((await replica.remove('instance', id)) === undefined) throw new NotFoundError('instance', id)
      return reply.code(204).send(null)
    },
  )
}

/**
 * A registration of an instance this agent owns, already held at the same address (same canonical
 * URL) and owner, is a refresh, not a new instance: the status and details our health probe wrote are
 * kept, as a status write after the registration, so a lookup filtering on `Healthy` does not lose it
 * until the next probe. Only the owner writes health (replica.ts, `checkInstanceWrite`): a
 * registration on another agent starts at Unknown until the owner probes.
 */
function keptHealth(
  registered: Instance,
  existing: Instance | undefined,
  selfUrl: string,
): Instance | undefined {
  if (
    existing === undefined ||
    existing.status === 'Unknown' ||
    instanceIdForUrl(existing.url) !== instanceIdForUrl(registered.url) ||
    registered.nodeUrl === undefined ||
    existing.nodeUrl === undefined ||
    normaliseNodeUrl(registered.nodeUrl) !== normaliseNodeUrl(selfUrl) ||
    normaliseNodeUrl(existing.nodeUrl) !== normaliseNodeUrl(selfUrl)
  ) {
    return undefined
  }
  return parseInstance({ ...registered, status: existing.status, details: existing.details })
}
