import stringify from 'safe-stable-stringify'
import {
  ENTITY_KINDS,
  type Entity,
  type EntityKind,
  isIdentifier,
  parseEntity,
  ValidationError,
} from '../model/index.ts'
import type { Version } from './version.ts'

/**
 * One write of one entity: a put (`value` set) or a delete (`value` null, a tombstone), with the
 * version that orders it. Changes are what the replica merges, stores, gossips and exchanges.
 */
export interface Change {
  readonly kind: EntityKind
  readonly id: string
  readonly version: Version
  /** The whole entity after the write, or null for a delete. */
  readonly value: Entity | null
}

/** The replica key of an entity: `<kind>/<id>` (ids never contain `/`). */
export function entityKey(kind: EntityKind, id: string): string {
  return `${kind}/${id}`
}

export function splitKey(key: string): { kind: EntityKind; id: string } {
  const slash = key.indexOf('/')
  return { kind: key.slice(0, slash) as EntityKind, id: key.slice(slash + 1) }
}

/**
 * The canonical stored form of a change: JSON with sorted keys, `{"d": value|null, "v": [ts, c, node]}`.
 * Canonical so that replicas holding the same changes hold byte-identical LevelDB values and digests,
 * whatever key order a peer used on the wire.
 */
export function encodeEntry(change: Pick<Change, 'version' | 'value'>): string {
  const v = change.version
  return stringify({ d: change.value, v: [v.ts, v.c, v.node] }) as string
}

/** Reads back an entry this replica stored itself (trusted input). */
export function decodeEntry(key: string, encoded: string): Change {
  const { d, v } = JSON.parse(encoded) as { d: Entity | null; v: [number, number, string] }
  const { kind, id } = splitKey(key)
  return { kind, id, version: { ts: v[0], c: v[1], node: v[2] }, value: d }
}

const MAX_COUNTER = 2 ** 31 - 1
const MAX_TIMESTAMP = 8.64e15 // the largest time a JS Date holds

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

/**
 * Validates a change that came from outside (a peer, a file): shape, identifiers, version and the
 * entity itself. Throws `ValidationError` naming the first problem; returns a change safe to merge.
 */
export function decodeChange(input: unknown, field = 'change'): Change {
  if (!isRecord(input)) throw new ValidationError(`${field} must be an object`, field)
  for (const name of Object.keys(input)) {
    if (name !== 'kind' && name !== 'id' && name !== 'version' && name !== 'value') {
      throw new ValidationError(`${field} has unknown field "${name}"`, `${field}.${name}`)
    }
  }
  const { kind, id, version, value } = input
  if (typeof kind !== 'string' || !(ENTITY_KINDS as readonly string[]).includes(kind)) {
    throw new ValidationError(`${field}.kind must be one of ${ENTITY_KINDS.join(', ')}`, `${field}.kind`)
  }
  if (typeof id !== 'string' || !isIdentifier(id)) {
    throw new ValidationError(`${field}.id must match the identifier rule`, `${field}.id`)
  }
  if (!isRecord(version)) throw new ValidationError(`${field}.version must be an object`, `${field}.version`)
  const { ts, c, node } = version
  if (!Number.isSafeInteger(ts) || (ts as number) < 0 || (ts as number) > MAX_TIMESTAMP) {
    throw new ValidationError(`${field}.version.ts must be a millisecond timestamp`, `${field}.version.ts`)
  }
  if (!Number.isSafeInteger(c) || (c as number) < 0 || (c as number) > MAX_COUNTER) {
    throw new ValidationError(`${field}.version.c must be an integer 0-${MAX_COUNTER}`, `${field}.version.c`)
  }
  if (typeof node !== 'string' || !isIdentifier(node)) {
    throw new ValidationError(`${field}.version.node must match the identifier rule`, `${field}.version.node`)
  }
  if (Object.keys(version).length !== 3) {
    throw new ValidationError(`${field}.version must have exactly ts, c and node`, `${field}.version`)
  }
  let entity: Entity | null = null
  if (value !== null) {
    if (value === undefined)
      throw new ValidationError(`${field}.value is required (null for a delete)`, `${field}.value`)
    entity = parseEntity(kind as EntityKind, value, `${field}.value`)
    if (entity.id !== id) {
      throw new ValidationError(
        `${field}.value.id "${entity.id}" differs from ${field}.id "${id}"`,
        `${field}.value.id`,
      )
    }
  }
  return { kind: kind as EntityKind, id, version: { ts: ts as number, c: c as number, node }, value: entity }
}
