import { type TSchema, Type } from '@sinclair/typebox'
import {
  DefinitionInputSchema,
  DefinitionSchema,
  INSTANCE_STATUSES,
  InstanceSchema,
  type InstanceStatus,
  LIVENESS_STATES,
  NodeSchema,
  RegisterInstanceRequestSchema,
} from '../model/index.ts'
import {
  HOST_PATTERN,
  IdentifierSchema,
  PATH_PATTERN,
  SCHEME_PATTERN,
  UrlSchema,
} from '../model/primitives.ts'

// Request and response schemas of every route. They are what Fastify validates (ajv) and what
// @fastify/swagger turns into /openapi.json, so the document describes exactly what is accepted and
// answered. Entity schemas come from src/model; this file only wraps them in the 1Backend envelopes.

const strict = { additionalProperties: false }

/** A string enum (`enum`, not TypeBox's `anyOf` of constants: shorter errors and documents). */
function stringEnum<T extends string>(values: readonly T[], description: string) {
  return Type.Unsafe<T>({ type: 'string', enum: [...values], description })
}

/** Free text from a URL path: no control characters (they would end up in logs and keys). */
export const NO_CONTROL_PATTERN = '^[^\\u0000-\\u001f\\u007f]+$'
/** Readable rules for the patterns defined here (the model's are in src/model/primitives.ts). */
export const HTTP_PATTERN_RULES: ReadonlyMap<string, string> = new Map([
  [NO_CONTROL_PATTERN, 'must not be empty or contain control characters'],
])

// ---- errors

export const ErrorSchema = Type.Object(
  { error: Type.String({ description: 'What was wrong, naming the field or parameter.' }) },
  { ...strict, description: 'An error; the body of every 4xx and 5xx answer.' },
)

const ERROR_DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'Bad input: invalid JSON, a field or parameter that breaks the schema (named in the message)',
  401: 'Missing or wrong `Authorization: Bearer <token>` (only when the agent has an API token)',
  404: 'No such entity',
  413: 'Request body over the limit (OB_BODY_LIMIT_BYTES)',
  415: 'Request body that is not application/json',
}

/** Error responses `codes`, each `{"error": "..."}`. */
export function errorResponses(...codes: Array<keyof typeof ERROR_DESCRIPTIONS>): Record<number, TSchema> {
  return Object.fromEntries(
    codes.map((code) => [
      code,
      Type.Object(ErrorSchema.properties, { ...strict, description: ERROR_DESCRIPTIONS[code] }),
    ]),
  )
}

// ---- path parameters

export const IdParamsSchema = Type.Object({ id: IdentifierSchema }, strict)

export const NodeUrlParamsSchema = Type.Object(
  {
    url: Type.String({
      pattern: NO_CONTROL_PATTERN,
      maxLength: 2048,
      description: 'The node URL, path-escaped (encodeURIComponent); a node id is accepted too',
      examples: ['http://10.0.0.7:11337'],
    }),
  },
  strict,
)

// ---- bodies

/** The two short-form examples of 1Backend's docs (README, HTTP API). */
const DEFINITION_EXAMPLES = [
  { definition: { id: 'test-a', image: { name: 'hashicorp/http-echo', port: 8080 }, hostPort: 8887 } },
  {
    definition: {
      id: 'test-b',
      repository: {
        url: 'https://github.com/1backend/1backend.git',
        containerFile: 'server/docker/Dockerfile',
      },
      hostPort: 9998,
    },
  },
]

export const SaveDefinitionBodySchema = Type.Object(
  { definition: DefinitionInputSchema },
  {
    ...strict,
    description:
      'A definition in normal form or in the short form (`image.port`, `repository.port`, `hostPort`), normalised on write',
    examples: DEFINITION_EXAMPLES,
  },
)

export const RegisterInstanceBodySchema = Type.Object(RegisterInstanceRequestSchema.properties, {
  ...strict,
  description:
    '`url`, or `scheme` + `host`|`ip` + `port` [+ `path`]. Without `id`, the id is derived from the URL, so registering a URL twice is one instance. `nodeUrl` defaults to this agent.',
  examples: [
    { url: 'http://10.0.0.5:8080', slug: 'user-svc', tags: ['blue'] },
    { scheme: 'grpc', ip: '10.0.0.6', port: 9000, slug: 'user-svc', deploymentId: 'depl_1' },
  ],
})

export const ListNodesBodySchema = Type.Object(
  { ids: Type.Optional(Type.Array(IdentifierSchema, { maxItems: 10_000 })) },
  { ...strict, description: 'Node ids to list; absent, empty or no body at all: every node', examples: [{}] },
)

// ---- query

/** Routes of the registry without query parameters refuse any, as `GET /registry-svc/instances` refuses unknown ones. */
export const NoQuerySchema = Type.Object({}, strict)

const instanceFilters = {
  id: Type.Optional(IdentifierSchema),
  slug: Type.Optional(IdentifierSchema),
  url: Type.Optional(UrlSchema),
  host: Type.Optional(Type.String({ pattern: HOST_PATTERN })),
  ip: Type.Optional(Type.String({ minLength: 1 })),
  scheme: Type.Optional(Type.String({ pattern: SCHEME_PATTERN })),
  path: Type.Optional(Type.String({ pattern: PATH_PATTERN })),
  deploymentId: Type.Optional(Type.String({ minLength: 1 })),
  tag: Type.Optional(Type.String()),
  status: Type.Optional(
    stringEnum<InstanceStatus>(
      INSTANCE_STATUSES,
      'Status as answered: an instance on a node this agent finds unreachable is Unreachable',
    ),
  ),
}

/** An index in a query string: digits (query values are strings; the route reads the number). */
const indexParam = (description: string) => Type.String({ pattern: '^[0-9]{1,15}$', description })

export const InstanceQuerySchema = Type.Object(
  {
    ...instanceFilters,
    index: Type.Optional(
      indexParam('X-Registry-Index of an earlier answer: wait until the answer changes from it'),
    ),
    wait: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'With index: how long to wait for a change, e.g. 30s or 5m (default 5m, at most 10m)',
      }),
    ),
  },
  strict,
)

export const InstanceWatchQuerySchema = Type.Object(
  {
    ...instanceFilters,
    index: Type.Optional(indexParam('Resume from this event id (as Last-Event-ID does)')),
  },
  strict,
)

export const WatchQuerySchema = Type.Object(
  { index: Type.Optional(indexParam('Resume from this event id (as Last-Event-ID does)')) },
  strict,
)

export const EventStreamSchema = {
  description:
    'text/event-stream: events named after the route (`instances`, `nodes`, `services`, `definitions`) whose `data` is the whole answer and whose `id` is its index; comment lines keep it open',
  content: { 'text/event-stream': { schema: Type.String() } },
}

// ---- answers

export const CreatedSchema = Type.Object(
  {},
  { ...strict, description: 'Stored (durable in LevelDB) and being gossiped' },
)

export const RegisteredSchema = Type.Object(
  { instance: InstanceSchema },
  { ...strict, description: 'Stored (durable in LevelDB) and being gossiped; the instance as stored' },
)

export const HeartbeatBodySchema = Type.Union([
  Type.Null(),
  Type.Object(
    {
      status: Type.Optional(
        stringEnum(
          ['Healthy', 'Degraded', 'Unreachable', 'Error'] as const,
          'What the service says of itself (default Healthy)',
        ),
      ),
      details: Type.Optional(Type.String({ maxLength: 1024 })),
    },
    strict,
  ),
])

export const HeartbeatTakenSchema = Type.Null({ description: 'Taken by the owner agent' })

export const DeletedSchema = Type.Null({
  description: 'Deleted (a tombstone, durable in LevelDB, being gossiped)',
})

export const DefinitionListSchema = Type.Object({ definitions: Type.Array(DefinitionSchema) }, strict)

export const ServiceListSchema = Type.Object(
  {
    services: Type.Array(
      Type.Object(
        {
          slug: Type.String({ description: 'The slug ("" for instances registered without one)' }),
          instances: Type.Integer(),
          statuses: Type.Record(Type.String(), Type.Integer(), {
            description:
              'Instance counts by status, as answered (an unreachable node’s instances are Unreachable)',
          }),
        },
        strict,
      ),
    ),
  },
  { ...strict, description: 'Every slug with its instance counts by status, ordered by slug' },
)

export const InstanceListSchema = Type.Object(
  { instances: Type.Array(InstanceSchema) },
  { ...strict, description: 'Matching instances, ordered by id' },
)

/**
 * A node record as answered: the stored record (agents add fields of their own, such as `peerId` and
 * `multiaddrs`: clients ignore them), with `lastHeartbeat` the later of the record's and the last
 * beat this agent heard, and `liveness` when this agent runs a failure detector.
 */
export const NodeViewSchema = Type.Object(
  {
    ...NodeSchema.properties,
    lastHeartbeat: Type.Optional(NodeSchema.properties.lastHeartbeat),
    liveness: Type.Optional(stringEnum(LIVENESS_STATES, "This agent's view of the node")),
  },
  { additionalProperties: true },
)

export const NodeListSchema = Type.Object(
  { nodes: Type.Array(NodeViewSchema) },
  { ...strict, description: 'Ordered by id' },
)

export const NodeAnswerSchema = Type.Object({ node: NodeViewSchema }, strict)

export const HealthSchema = Type.Object(
  {
    status: Type.Literal('ok'),
    nodeId: Type.String(),
    digest: Type.String({
      description: 'Hex digest of the whole replica: equal on two agents exactly when their states are',
    }),
    definitions: Type.Integer(),
    instances: Type.Integer(),
    nodes: Type.Integer(),
    tombstones: Type.Integer(),
    peers: Type.Integer({ description: 'libp2p peers this agent is connected to' }),
    selfPreservation: Type.Optional(
      Type.Boolean({
        description:
          'True while this agent sees more than OB_SELF_PRESERVATION_RATIO of known nodes unreachable and deletes nothing of other nodes',
      }),
    ),
    unreachableRatio: Type.Optional(
      Type.Number({ description: 'Share of known nodes this agent finds unreachable' }),
    ),
  },
  strict,
)
