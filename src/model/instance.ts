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

/** `PUT /registry-svc/instance` body: 1Backend's RegisterInstanceRequest plus `slug`, `nodeUrl`, `tags`. */
export const RegisterInstanceRequestSchema = Type.Object(
  {
    id: Optional(IdentifierSchema),
    ...address,
    slug: IdentifierSchema,
    deploymentId: Optional(NonEmptyStringSchema),
    nodeUrl: Optional(UrlSchema),
    tags: Optional(Type.Array(Type.String())),
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
    slug: IdentifierSchema,
    deploymentId: Optional(NonEmptyStringSchema),
    nodeUrl: Optional(UrlSchema),
    tags: Optional(Type.Array(Type.String())),
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
export function instanceFromRegistration(req: unknown, defaults: { nodeUrl?: string; now: Date }): Instance {
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
      slug: r.slug,
      deploymentId: r.deploymentId,
      nodeUrl: r.nodeUrl ?? defaults.nodeUrl,
      tags: r.tags,
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
  o.slug = i.slug
  if (i.deploymentId !== undefined) o.deploymentId = i.deploymentId
  if (i.nodeUrl !== undefined) o.nodeUrl = i.nodeUrl
  if (i.tags !== undefined && i.tags.length > 0) o.tags = [...i.tags]
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
