import { type Static, type TSchema, Type } from '@sinclair/typebox'
import { parseAbsoluteUrl } from './address.ts'
import { compileChecker } from './check.ts'
import { assertTimestamp, IdentifierSchema, TimestampSchema, UrlSchema } from './primitives.ts'

/** Used / total / percent of one resource, as 1Backend reports it (bytes for memory and disk). */
const UsageSchema = Type.Object({ used: Type.Number(), total: Type.Number(), percent: Type.Number() })

/**
 * A machine running an agent; written only by that agent (its heartbeat). Open to additional fields
 * at every level, because agents add their own (peer id, multiaddrs, liveness) and a replica must not
 * drop a newer peer's node record for carrying a field it does not know.
 */
export const NodeSchema = Type.Object({
  id: IdentifierSchema,
  url: UrlSchema,
  availabilityZone: Type.Optional(Type.String()),
  region: Type.Optional(Type.String()),
  lastHeartbeat: TimestampSchema,
  usage: Type.Optional(Type.Object({ cpu: UsageSchema, memory: UsageSchema, disk: UsageSchema })),
  /** From `nvidia-smi` where present; free-form objects (1Backend's GPU fields). */
  gpus: Type.Optional(Type.Array(Type.Object({}))),
})
export type Node = Static<typeof NodeSchema> & { [field: string]: unknown }

/**
 * What an agent believes about a node, shown by the API as `liveness` and used as a log field and a
 * metric label (src/liveness decides it).
 * - `alive`: heard from recently.
 * - `suspect`: silent for a few beats: probably down, possibly a slow network or a long GC pause.
 * - `unreachable`: silent for longer: treat as down.
 */
export const LIVENESS_STATES = ['alive', 'suspect', 'unreachable'] as const
export type LivenessState = (typeof LIVENESS_STATES)[number]

const checkNode = compileChecker(NodeSchema)

/**
 * Validates a node record and returns a deep copy in a fixed key order, so equal records serialise
 * to equal bytes: at every level, the fields the schema knows in schema order, then the others
 * (added by agents, or free-form like gpus) sorted by name.
 */
export function parseNode(value: unknown, field = 'node'): Node {
  const n = checkNode(value, field)
  parseAbsoluteUrl(n.url, `${field}.url`)
  assertTimestamp(n.lastHeartbeat, `${field}.lastHeartbeat`)
  return canonicalCopy(n, NodeSchema) as Node
}

/** Deep copy of a JSON value, keys ordered as above; `fromEntries` keeps `__proto__` a plain key. */
function canonicalCopy(value: unknown, schema: TSchema | undefined): unknown {
  if (Array.isArray(value)) return value.map((item) => canonicalCopy(item, schema?.items))
  if (value === null || typeof value !== 'object') return value
  const record = value as Record<string, unknown>
  const properties: Record<string, TSchema> = schema?.properties ?? {}
  const known = Object.keys(properties).filter((k) => Object.hasOwn(record, k))
  const others = Object.keys(record)
    .filter((k) => !Object.hasOwn(properties, k))
    .sort()
  return Object.fromEntries(
    [...known, ...others]
      .filter((k) => record[k] !== undefined)
      .map((k) => [k, canonicalCopy(record[k], properties[k])]),
  )
}
