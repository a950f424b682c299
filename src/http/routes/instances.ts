import {
  type Instance,
  instanceFromRegistration,
  instanceIdForUrl,
  normaliseNodeUrl,
  parseInstance,
} from '../../model/index.ts'
import { parseDurationMs } from '../../support/duration.ts'
import { assertServiceSlug } from '../auth.ts'
import { NotFoundError, NotOwnerError, RequestValidationError, TooManyWatchersError } from '../errors.ts'
import {
  DeletedSchema,
  EventStreamSchema,
  errorResponses,
  HeartbeatBodySchema,
  HeartbeatTakenSchema,
  IdParamsSchema,
  InstanceListSchema,
  InstanceQuerySchema,
  InstanceWatchQuerySchema,
  NoQuerySchema,
  RegisteredSchema,
  RegisterInstanceBodySchema,
} from '../schemas.ts'
import type { RegistryApp, RouteDeps } from '../types.ts'
import { DEFAULT_WAIT_MS, lastEventId, MAX_WAIT_MS } from '../watch-hub.ts'
import { sendJsonBytes } from './send.ts'

const tags = ['instances']
const security = [{ bearerAuth: [] }]

export function instanceRoutes(app: RegistryApp, { replica, self, read, checks, watches }: RouteDeps): void {
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
      const registration = await replica.put('instance', registered)
      const kept = keptHealth(registered, existing, self.selfUrl)
      // Based on our registration only: if another was merged meanwhile, it is not ours to keep health for.
      const stored =
        ((kept && (await replica.putStatus(kept, registration.version))?.value) as Instance | undefined) ??
        registered
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
    async (request, reply) => {
      const { index: given, wait, ...query } = request.query
      const index = given === undefined ? undefined : Number(given)
      if (wait !== undefined && index === undefined) {
        throw new RequestValidationError(
          'query parameter "wait" needs "index" (what to wait for a change from)',
          'wait',
        )
      }
      let answer = read.indexedInstances(query)
      if (index !== undefined && answer.index === index) {
        const waitMs = parseWait(wait)
        if (!watches.acquire()) throw new TooManyWatchersError(watches.maxWatchers)
        answer = await watches.block(
          'instances',
          () => read.indexedInstances(query),
          index,
          waitMs,
          (gone) => request.raw.socket.once('close', gone),
        )
      }
      reply.header('x-registry-index', String(answer.index))
      sendJsonBytes(reply, answer.bytes)
    },
  )

  app.get(
    '/registry-svc/instances/watch',
    {
      schema: {
        operationId: 'watchInstances',
        summary: 'Watch the instances matching every given filter (Server-Sent Events)',
        description:
          'The first event at once (unless Last-Event-ID or index names the current answer), then one after each change that alters the answer. A slow client gets the latest answer, never a queue.',
        tags,
        querystring: InstanceWatchQuerySchema,
        response: { 200: EventStreamSchema, ...errorResponses(400, 503) },
      },
    },
    (request, reply) => {
      const { index, ...query } = request.query
      const resumeFrom = index === undefined ? lastEventId(request.headers) : Number(index)
      if (!watches.acquire()) throw new TooManyWatchersError(watches.maxWatchers)
      reply.hijack()
      watches.stream(reply.raw, 'instances', () => read.indexedInstances(query), resumeFrom)
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

/** `wait` of a blocking query (`30s`, `5m`, or ms), bounded; 400 naming it when it is not a duration. */
function parseWait(wait: string | undefined): number {
  if (wait === undefined) return DEFAULT_WAIT_MS
  const n = parseDurationMs(wait)
  if (n === undefined) {
    throw new RequestValidationError('query parameter "wait" must be a duration such as 30s or 5m', 'wait')
  }
  return Math.min(n, MAX_WAIT_MS)
}
