import { isIP } from 'node:net'
import { type Static, Type } from '@sinclair/typebox'
import {
  type AddressParts,
  addressFromUrl,
  assertAddressAgrees,
  buildUrl,
  instanceIdForUrl,
  normalisePath,
  parseAbsoluteUrl,
} from './address.ts'
import { compileChecker } from './check.ts'
import { invalid, ValidationError } from './errors.ts'
import {
  assertTimestamp,
  HOST_PATTERN,
  IdentifierSchema,
  NonEmptyStringSchema,
  PATH_PATTERN,
  PortSchema,
  SCHEME_PATTERN,
  TimestampSchema,
  UrlSchema,
} from './primitives.ts'

export { instanceIdForUrl } from './address.ts'

/** Wire values, shared with 1Backend. Append-only: peers on older versions reject unknown ones. */
export const INSTANCE_STATUSES = ['Unknown', 'Healthy', 'Degraded', 'Unreachable', 'Error'] as const
export type InstanceStatus = (typeof INSTANCE_STATUSES)[number]

const Optional = Type.Optional
const strict = { additionalProperties: false }

// The address fields as both the request and the stored record spell them.
const address = {
  url: Optional(UrlSchema),
  scheme: Optional(Type.String({ pattern: SCHEME_PATTERN })),
  host: Optional(Type.String({ pattern: HOST_PATTERN })),
  ip: Optional(NonEmptyStringSchema),
  port: Optional(PortSchema),
  path: Optional(Type.String({ pattern: PATH_PATTERN })),
}

/** How the owner agent checks an instance (DESIGN.md §7.2). */
export const CHECK_TYPES = ['tcp', 'http', 'ttl', 'none'] as const
export type CheckType = (typeof CHECK_TYPES)[number]

/** Bounds of a check's times, ms: a tenth of a second to a day (to a week for deregistration). */
export const MIN_CHECK_MS = 100
export const MAX_CHECK_MS = 24 * 60 * 60 * 1000
export const MAX_DEREGISTER_AFTER_MS = 7 * MAX_CHECK_MS

const checkMs = (description: string) =>
  Optional(Type.Integer({ minimum: MIN_CHECK_MS, maximum: MAX_CHECK_MS, description }))

const checkFields = {
  type: Type.Union(
    CHECK_TYPES.map((t) => Type.Literal(t)),
    {
      description:
        'tcp: connect; http: GET of url + path; ttl: renewed by heartbeats; none: status from heartbeats only',
    },
  ),
  path: Optional(
    Type.String({ pattern: PATH_PATTERN, description: 'http: path joined to the instance URL' }),
  ),
  intervalMs: checkMs('Time between two checks (default OB_PROBE_INTERVAL_MS)'),
  timeoutMs: checkMs('Deadline of one check (default the agent’s)'),
  ttlMs: checkMs(
    'ttl: longest time between two heartbeats before the instance is Unreachable (default 30000)',
  ),
  deregisterAfterMs: Optional(
    Type.Integer({
      minimum: 0,
      maximum: MAX_DEREGISTER_AFTER_MS,
      description:
        'Delete the instance once it has been Unreachable or Error this long without a break; 0 never (default OB_DEREGISTER_AFTER_MS)',
    }),
  ),
}

/** A check as registered: strict, so a typo is a 400 naming the field. */
export const CheckRequestSchema = Type.Object(checkFields, strict)
/** A check as stored: open, like the instance, to fields a newer agent adds. */
export const CheckSchema = Type.Object(checkFields, { additionalProperties: true })
export type Check = Static<typeof CheckRequestSchema>

/**
 * `PUT /registry-svc/instance` body: 1Backend's RegisterInstanceRequest plus `slug` (optional, as in
 * 1Backend, whose client sends none), `nodeUrl`, `tags` and `check`.
 */
export const RegisterInstanceRequestSchema = Type.Object(
  {
    id: Optional(IdentifierSchema),
    ...address,
    slug: Optional(IdentifierSchema),
    deploymentId: Optional(NonEmptyStringSchema),
    nodeUrl: Optional(UrlSchema),
    tags: Optional(Type.Array(Type.String())),
    check: Optional(CheckRequestSchema),
  },
  strict,
)
export type RegisterInstanceRequest = Static<typeof RegisterInstanceRequestSchema>

/** A stored instance, as listed by the API and gossiped between peers (a superset of 1Backend's). */
export const InstanceSchema = Type.Object(
  {
    id: IdentifierSchema,
    ...address,
    url: UrlSchema,
    scheme: Type.String({ pattern: SCHEME_PATTERN }),
    slug: Optional(IdentifierSchema),
    deploymentId: Optional(NonEmptyStringSchema),
    nodeUrl: Optional(UrlSchema),
    tags: Optional(Type.Array(Type.String())),
    check: Optional(CheckSchema),
    status: Type.Union(INSTANCE_STATUSES.map((s) => Type.Literal(s))),
    details: Optional(Type.String()),
    lastHeartbeat: Optional(TimestampSchema),
  },
  // Open: a replica keeps the fields a newer agent adds (a rolling upgrade must not make replicas drop
  // or rewrite each other's records). Registration requests stay strict.
  { additionalProperties: true },
)
export type Instance = Static<typeof InstanceSchema> & { [field: string]: unknown }

const KNOWN_FIELDS = new Set(Object.keys(InstanceSchema.properties))

const checkRequest = compileChecker(RegisterInstanceRequestSchema)
const checkInstance = compileChecker(InstanceSchema)

/**
 * Turns a registration into a stored instance. The address comes from `url` (parts derived from it;
 * parts given alongside must agree) or is built from scheme + host|ip + port [+ path]. Without an `id`
 * the id is derived from the URL, which makes registration idempotent across nodes.
 */
export function instanceFromRegistration(
  req: unknown,
  defaults: { nodeUrl?: string; now: Date; slug?: string | undefined },
): Instance {
  const field = 'instance'
  const r = checkRequest(req, field)
  const given = { scheme: r.scheme, host: r.host, ip: r.ip, port: r.port, path: normalisePath(r.path) }
  let url: string
  let parts: AddressParts & { scheme: string }
  if (r.url !== undefined) {
    url = r.url
    const derived = addressFromUrl(parseAbsoluteUrl(url, `${field}.url`), `${field}.url`)
    // Given parts win over derived ones (e.g. an explicit default port); finish() checks they agree.
    parts = {
      scheme: given.scheme ?? derived.scheme,
      host: given.host ?? derived.host,
      ip: given.ip ?? derived.ip,
      port: given.port ?? derived.port,
      path: given.path ?? derived.path,
    }
  } else {
    const hostOrIp = given.host ?? given.ip
    if (given.scheme === undefined || hostOrIp === undefined || given.port === undefined) {
      throw new ValidationError(`${field} ${missingAddressProblem(given)}`, `${field}.url`)
    }
    if (given.ip !== undefined) assertIp(given.ip, `${field}.ip`)
    url = buildUrl(given.scheme.toLowerCase(), hostOrIp, given.port, given.path)
    if (!URL.parse(url)?.hostname) {
      throw invalid(`${field}.${given.host !== undefined ? 'host' : 'ip'}`, 'is not a valid host name')
    }
    parts = { ...given, scheme: given.scheme }
  }
  return finish(
    {
      id: r.id ?? instanceIdForUrl(url),
      url,
      scheme: parts.scheme,
      host: parts.host,
      ip: parts.ip,
      port: parts.port,
      path: parts.path,
      slug: r.slug ?? defaults.slug,
      deploymentId: r.deploymentId,
      nodeUrl: r.nodeUrl ?? defaults.nodeUrl,
      tags: r.tags,
      check: r.check,
      status: 'Unknown',
      lastHeartbeat: defaults.now.toISOString(),
    },
    field,
  )
}

/** Validates a full instance record (e.g. one received from a peer) and returns it normalised. */
export function parseInstance(value: unknown, field = 'instance'): Instance {
  return finish(checkInstance(value, field), field)
}

/**
 * The rules the schema cannot express, then a fresh object with a fixed key order (the known fields in
 * schema order, then any others sorted) and no absent optional fields, so that equal instances
 * serialise to equal bytes on every replica.
 */
function finish(i: Instance, field: string): Instance {
  const u = parseAbsoluteUrl(i.url, `${field}.url`)
  const scheme = i.scheme.toLowerCase()
  const path = normalisePath(i.path)
  if (i.ip !== undefined) assertIp(i.ip, `${field}.ip`)
  assertAddressAgrees(u, { scheme, host: i.host, ip: i.ip, port: i.port, path }, field)
  if (i.nodeUrl !== undefined) parseAbsoluteUrl(i.nodeUrl, `${field}.nodeUrl`)
  if (i.lastHeartbeat !== undefined) assertTimestamp(i.lastHeartbeat, `${field}.lastHeartbeat`)

  // Assigned in schema order; every required field is set below, hence the final cast.
  const o: Partial<Instance> = { id: i.id, url: i.url, scheme }
  if (i.host !== undefined) o.host = i.host
  if (i.ip !== undefined) o.ip = i.ip
  if (i.port !== undefined) o.port = i.port
  if (path !== undefined) o.path = path
  if (i.slug !== undefined) o.slug = i.slug
  if (i.deploymentId !== undefined) o.deploymentId = i.deploymentId
  if (i.nodeUrl !== undefined) o.nodeUrl = i.nodeUrl
  if (i.tags !== undefined && i.tags.length > 0) o.tags = [...i.tags]
  if (i.check !== undefined) o.check = checkOf(i.check, `${field}.check`)
  o.status = i.status
  if (i.details !== undefined) o.details = i.details
  if (i.lastHeartbeat !== undefined) o.lastHeartbeat = i.lastHeartbeat
  // Fields of newer agents, after the known ones, sorted; `__proto__` stays a plain key.
  const others = Object.keys(i)
    .filter((k) => !KNOWN_FIELDS.has(k) && i[k] !== undefined)
    .sort()
  for (const k of others)
    Object.defineProperty(o, k, { value: i[k], enumerable: true, writable: true, configurable: true })
  return o as Instance
}

/**
 * A check in canonical form (known fields in schema order, others sorted), with the rules the schema
 * cannot say: a path only for http, a ttl only for ttl, a timeout below the interval.
 */
function checkOf(c: Check & { [field: string]: unknown }, field: string): Check {
  if (c.path !== undefined && c.type !== 'http') throw invalid(`${field}.path`, 'is only for an http check')
  if (c.ttlMs !== undefined && c.type !== 'ttl') throw invalid(`${field}.ttlMs`, 'is only for a ttl check')
  if (c.timeoutMs !== undefined && c.intervalMs !== undefined && c.timeoutMs >= c.intervalMs) {
    throw invalid(`${field}.timeoutMs`, `must be below intervalMs (${c.intervalMs})`)
  }
  const o: Record<string, unknown> = { type: c.type }
  for (const k of ['path', 'intervalMs', 'timeoutMs', 'ttlMs', 'deregisterAfterMs'] as const) {
    if (c[k] !== undefined) o[k] = c[k]
  }
  const known = new Set(Object.keys(checkFields))
  for (const k of Object.keys(c)
    .filter((k) => !known.has(k) && c[k] !== undefined)
    .sort()) {
    Object.defineProperty(o, k, { value: c[k], enumerable: true, writable: true, configurable: true })
  }
  return o as Check
}

function assertIp(ip: string, field: string): void {
  if (isIP(ip) === 0) throw invalid(field, 'must be an IPv4 or IPv6 address')
}

function missingAddressProblem(given: AddressParts): string {
  const missing = [
    given.scheme === undefined ? 'scheme' : '',
    given.host === undefined && given.ip === undefined ? 'host' : '',
    given.port === undefined ? 'port' : '',
  ].filter(Boolean)
  const partial = missing.length < 3 ? ` (${missing.join(', ')} missing)` : ''
  return `needs url or scheme+host+port${partial}`
}
