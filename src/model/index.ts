import { type Definition, parseDefinition } from './definition.ts'
import { type Instance, parseInstance } from './instance.ts'
import { type Node, parseNode } from './node.ts'

export { normaliseNodeUrl } from './address.ts'
export type { Checker } from './check.ts'
export {
  type Definition,
  type DefinitionInput,
  DefinitionInputSchema,
  DefinitionSchema,
  parseDefinition,
} from './definition.ts'
export { parseDefinitionsDocument } from './definition-document.ts'
export { invalid, ValidationError } from './errors.ts'
export { assertIdentifier, IDENTIFIER_PATTERN, IDENTIFIER_RULE, isIdentifier } from './ids.ts'
export {
  CHECK_TYPES,
  type Check,
  type CheckType,
  INSTANCE_STATUSES,
  type Instance,
  InstanceSchema,
  type InstanceStatus,
  instanceFromRegistration,
  instanceIdForUrl,
  MAX_DEREGISTER_AFTER_MS,
  parseInstance,
  type RegisterInstanceRequest,
  RegisterInstanceRequestSchema,
} from './instance.ts'
export { LIVENESS_STATES, type LivenessState, type Node, NodeSchema, parseNode } from './node.ts'

/** The replicated entity kinds; also the first segment of replica keys. Append-only (wire value). */
export const ENTITY_KINDS = ['definition', 'instance', 'node'] as const
export type EntityKind = (typeof ENTITY_KINDS)[number]
export type Entity = Definition | Instance | Node

const PARSERS: { readonly [K in EntityKind]: (value: unknown, field: string) => Entity } = {
  definition: parseDefinition,
  instance: parseInstance,
  node: parseNode,
}

/** Validates and normalises an entity of `kind`; throws ValidationError. `field` defaults to the kind. */
export function parseEntity(kind: EntityKind, value: unknown, field: string = kind): Entity {
  return PARSERS[kind](value, field)
}
