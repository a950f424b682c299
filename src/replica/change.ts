import stringify from 'safe-stable-stringify'
import {
  ENTITY_KINDS,
  type Entity,
  type EntityKind,
  isIdentifier,
  parseEntity,
  ValidationError,
} from '../model/index.ts'
import { compareVersions, MAX_COUNTER, MAX_TIMESTAMP, type Version } from './version.ts'

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
  /**
   * Set on status writes only: the version of the plain write (registration) this status describes.
   * Orders the change right after that write (see `compareChanges` in lww.ts).
   */
  readonly basedOn?: Version
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
export function encodeEntry(change: Pick<Change, 'version' | 'value' | 'basedOn'>): string {
  const v = change.version
  const b = change.basedOn
  if (b === undefined) return stringify({ d: change.value, v: [v.ts, v.c, v.node] }) as string
  return stringify({ b: [b.ts, b.c, b.node], d: change.value, v: [v.ts, v.c, v.node] }) as string
}

/** Reads back an entry this replica stored itself (trusted input). */
export function decodeEntry(key: string, encoded: string): Change {
  const { b, d, v } = JSON.parse(encoded) as {
    b?: [number, number, string]
    d: Entity | null
    v: [number, number, string]
  }
  const { kind, id } = splitKey(key)
  const change = { kind, id, version: { ts: v[0], c: v[1], node: v[2] }, value: d }
  return b === undefined ? change : { ...change, basedOn: { ts: b[0], c: b[1], node: b[2] } }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

/**
 * Validates a change that came from outside (a peer, a file): shape, identifiers, version and the
 * entity itself. Throws `ValidationError` naming the first problem; returns a change safe to merge,
 * made of the fields it knows (unknown fields of the change and of its version are dropped; unknown
 * fields of the entity are kept, see the model).
 */
export function decodeChange(input: unknown, field = 'change'): Change {
  if (!isRecord(input)) throw new ValidationError(`${field} must be an object`, field)
  // Fields this release does not know are ignored, never a reason to drop the change: a newer agent
  // may add one (a change of meaning would come with a new protocol id, src/model/wire.ts).
  const { kind, id, version, value } = input
  if (typeof kind !== 'string' || !(ENTITY_KINDS as readonly string[]).includes(kind)) {
    throw new ValidationError(`${field}.kind must be one of ${ENTITY_KINDS.join(', ')}`, `${field}.kind`)
  }
  if (typeof id !== 'string' || !isIdentifier(id)) {
    throw new ValidationError(`${field}.id must match the identifier rule`, `${field}.id`)
  }
  const checked = checkVersion(version, `${field}.version`)
  let basedOn: Version | undefined
  if (input.basedOn !== undefined) {
    basedOn = checkVersion(input.basedOn, `${field}.basedOn`)
    if (value === null || compareVersions(basedOn, checked) >= 0) {
      throw new ValidationError(
        `${field}.basedOn must be older than ${field}.version, on a put`,
        `${field}.basedOn`,
      )
    }
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
  const change = { kind: kind as EntityKind, id, version: checked, value: entity }
  return basedOn === undefined ? change : { ...change, basedOn }
}

/**
 * Validates a version `{ts, c, node}`: from outside, and this node's own before they are written, so
 * nothing is stored that a peer would refuse. Throws `ValidationError`.
 */
export function checkVersion(version: unknown, field: string): Version {
  if (!isRecord(version)) throw new ValidationError(`${field} must be an object`, field)
  const { ts, c, node } = version
  if (!Number.isSafeInteger(ts) || (ts as number) < 0 || (ts as number) > MAX_TIMESTAMP) {
    throw new ValidationError(`${field}.ts must be a millisecond timestamp`, `${field}.ts`)
  }
  if (!Number.isSafeInteger(c) || (c as number) < 0 || (c as number) > MAX_COUNTER) {
    throw new ValidationError(`${field}.c must be an integer 0-${MAX_COUNTER}`, `${field}.c`)
  }
  if (typeof node !== 'string' || !isIdentifier(node)) {
    throw new ValidationError(`${field}.node must match the identifier rule`, `${field}.node`)
  }
  return { ts: ts as number, c: c as number, node }
}
