import { type Static, Type } from '@sinclair/typebox'
import { compileChecker } from './check.ts'
import { invalid, ValidationError } from './errors.ts'
import { IdentifierSchema, NonEmptyStringSchema, PortSchema } from './primitives.ts'

const Optional = Type.Optional
const strict = { additionalProperties: false }

const PortListSchema = Type.Array(PortSchema)

const ApiSpecSchema = Type.Object(
  {
    url: Type.String(),
    protocolType: Optional(Type.String()),
    version: Optional(Type.String()),
    metadata: Optional(Type.Record(Type.String(), Type.String())),
  },
  strict,
)
const ClientSchema = Type.Object({ language: NonEmptyStringSchema, url: NonEmptyStringSchema }, strict)
const EnvVarSchema = Type.Object({ key: NonEmptyStringSchema, value: Type.String() }, strict)
const PortMappingSchema = Type.Object({ internal: PortSchema, host: PortSchema }, strict)

const ImageSchema = Type.Object({ name: NonEmptyStringSchema, internalPorts: PortListSchema }, strict)
const RepositorySchema = Type.Object(
  {
    url: NonEmptyStringSchema,
    version: Optional(Type.String()),
    buildContext: Optional(Type.String()),
    containerFile: Optional(Type.String()),
    internalPorts: PortListSchema,
  },
  strict,
)

/**
 * The normal form: what is stored, gossiped and listed. Exactly one of `image` and `repository` is
 * set (checked in code; a JSON Schema `oneOf` would make every error message "no union matched").
 */
export const DefinitionSchema = Type.Object(
  {
    id: IdentifierSchema,
    image: Optional(ImageSchema),
    repository: Optional(RepositorySchema),
    apiSpecs: Optional(Type.Array(ApiSpecSchema)),
    clients: Optional(Type.Array(ClientSchema)),
    envars: Optional(Type.Array(EnvVarSchema)),
    ports: Optional(Type.Array(PortMappingSchema)),
  },
  strict,
)
export type Definition = Static<typeof DefinitionSchema>
type Repository = Static<typeof RepositorySchema>
type ApiSpec = Static<typeof ApiSpecSchema>

/**
 * What `parseDefinition` accepts: the normal form, plus the short form of the 1Backend docs
 * (`image.port`, `repository.port`, top-level `hostPort`) and 1Backend's own JSON name for the
 * repository's internal ports (`repository.ports`). Also the request schema for saving a definition.
 */
export const DefinitionInputSchema = Type.Object(
  {
    ...DefinitionSchema.properties,
    image: Optional(
      Type.Object(
        { name: NonEmptyStringSchema, internalPorts: Optional(PortListSchema), port: Optional(PortSchema) },
        strict,
      ),
    ),
    repository: Optional(
      Type.Object(
        {
          ...RepositorySchema.properties,
          internalPorts: Optional(PortListSchema),
          ports: Optional(PortListSchema),
          port: Optional(PortSchema),
        },
        strict,
      ),
    ),
    hostPort: Optional(PortSchema),
  },
  strict,
)
export type DefinitionInput = Static<typeof DefinitionInputSchema>

const checkInput = compileChecker(DefinitionInputSchema)

/**
 * Validates a definition in normal or short form and returns the normal form: a fresh object whose
 * keys follow schema order, absent optional fields omitted and empty optional lists dropped, so equal
 * definitions serialise to equal bytes. Idempotent: parsing its own output returns an equal value.
 */
export function parseDefinition(input: unknown, field = 'definition'): Definition {
  const d = checkInput(input, field)
  if (d.image !== undefined && d.repository !== undefined) {
    throw new ValidationError(`${field} must have exactly one of image or repository, not both`, field)
  }
  if (d.image === undefined && d.repository === undefined) {
    throw new ValidationError(`${field} needs an image or a repository`, field)
  }
  if (d.hostPort !== undefined && d.ports !== undefined) {
    throw invalid(`${field}.hostPort`, `cannot be combined with ${field}.ports`)
  }

  const internalPorts =
    d.image !== undefined
      ? onePortList(field, 'image', { internalPorts: d.image.internalPorts, port: d.image.port })
      : onePortList(field, 'repository', {
          internalPorts: d.repository!.internalPorts,
          ports: d.repository!.ports,
          port: d.repository!.port,
        })
  // Short form `hostPort: H` maps the first internal port to H. A definition with no internal port
  // at all (the docs' repository example) is taken to listen on H inside the container too, and that
  // port is recorded in internalPorts so that `ports[].internal` always names a declared port.
  if (d.hostPort !== undefined && internalPorts.length === 0) internalPorts.push(d.hostPort)

  const out: Definition = { id: d.id }
  if (d.image !== undefined) out.image = { name: d.image.name, internalPorts }
  if (d.repository !== undefined) {
    const r = d.repository
    const repository: Partial<Repository> = { url: r.url }
    if (r.version !== undefined) repository.version = r.version
    if (r.buildContext !== undefined) repository.buildContext = r.buildContext
    if (r.containerFile !== undefined) repository.containerFile = r.containerFile
    repository.internalPorts = internalPorts
    out.repository = repository as Repository
  }
  if (d.apiSpecs?.length) out.apiSpecs = d.apiSpecs.map(normaliseApiSpec)
  if (d.clients?.length) out.clients = d.clients.map((c) => ({ language: c.language, url: c.url }))
  if (d.envars?.length) out.envars = d.envars.map((e) => ({ key: e.key, value: e.value }))
  if (d.hostPort !== undefined) out.ports = [{ internal: internalPorts[0]!, host: d.hostPort }]
  else if (d.ports?.length) out.ports = d.ports.map((p) => ({ internal: p.internal, host: p.host }))
  return out
}

function normaliseApiSpec(s: ApiSpec): ApiSpec {
  const out: ApiSpec = { url: s.url }
  if (s.protocolType !== undefined) out.protocolType = s.protocolType
  if (s.version !== undefined) out.version = s.version
  if (s.metadata !== undefined) out.metadata = sortedRecord(s.metadata)
  return out
}

/** The internal ports from whichever one of the alternative spellings was used. */
function onePortList(
  field: string,
  owner: 'image' | 'repository',
  spellings: Record<string, number | number[] | undefined>,
): number[] {
  const given = Object.entries(spellings).filter(([, v]) => v !== undefined)
  if (given.length > 1) {
    const names = given.map(([k]) => `${field}.${owner}.${k}`)
    throw new ValidationError(`${names.join(' and ')} cannot be combined`, names[1]!)
  }
  const value = given[0]?.[1]
  return value === undefined ? [] : Array.isArray(value) ? [...value] : [value]
}

/** Copy with sorted keys; `Object.fromEntries` defines keys such as `__proto__` as plain data. */
function sortedRecord(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}
