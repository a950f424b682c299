import type { Uint8ArrayList } from 'uint8arraylist'
import { LEAF_BITS, MAX_ENTRIES_PER_FRAME, MAX_LEVELS_PER_ROUND } from '../../model/wire.ts'
import { LEAF_COUNT } from '../../replica/digest.ts'
import { SyncSessionError } from './errors.ts'

/**
 * Frames of the anti-entropy protocol (`SYNC_PROTOCOL`): one UTF-8 JSON object per length-prefixed
 * frame, told apart by `type`. Type values are append-only; unknown fields are ignored (so a later
 * version can add fields), missing or mistyped fields reject the frame and end the session.
 *
 * A session, client (the side that dialled) on the left:
 *
 *     hello {digest, entries}          →
 *                                      ←  hello {digest, entries}        equal digests: done, in sync
 *     get-digests {parentLevel,        →
 *       parents, level}                ←  digests {level, digests}       repeated 0→4→8→12, children
 *                                                                        of differing nodes only;
 *                                                                        skipped when one side holds
 *                                                                        < 1/64 of the other
 *     get-entries {ranges}             →
 *                                      ←  entries {entries, last} …      the server's entries in the
 *                                                                        differing leaves, many frames
 *     entries {entries, last} …        →                                 the client's entries there that
 *                                      ←  done {digest}                  the server lacks or holds older
 *     (both close)
 *
 * A pull-only client sends one empty `entries` frame with `last`. Either side may send
 * `error {reason}` instead of an answer and close (`busy`: a session with that peer is running).
 */
export type Frame =
  | HelloFrame
  | GetDigestsFrame
  | DigestsFrame
  | GetEntriesFrame
  | EntriesFrame
  | DoneFrame
  | ErrorFrame

export type FrameType = Frame['type']

/** Opens a session (client) and answers it (server): root digest and entry count of the sender. */
export interface HelloFrame {
  type: 'hello'
  /** Root of the sender's digest tree, base64 of 32 bytes. */
  digest: string
  /** Entries the sender holds, tombstones included: lets the client skip the tree walk when one side is (nearly) empty. */
  entries: number
}

/** Asks for the digests of every node at `level` under each of `parents` (nodes at `parentLevel`). */
export interface GetDigestsFrame {
  type: 'get-digests'
  parentLevel: number
  /** Node indices at `parentLevel`, strictly increasing. */
  parents: number[]
  /** At most `MAX_LEVELS_PER_ROUND` below `parentLevel`, at most `LEAF_BITS`. */
  level: number
}

/** Answer to `get-digests`: `2^(level - parentLevel)` digests per parent, parents in request order. */
export interface DigestsFrame {
  type: 'digests'
  level: number
  digests: string[]
}

/** Asks for every entry in the given leaf ranges; the server answers with `entries` frames. */
export interface GetEntriesFrame {
  type: 'get-entries'
  /** Half-open leaf ranges `[from, to)`, sorted, not touching or overlapping. */
  ranges: Array<[number, number]>
}

/**
 * A slice of an entry list. Entries are changes in the shape `decodeChange` accepts, validated one by
 * one (a bad entry is dropped and counted, not the whole frame). The last frame of a list has `last`.
 */
export interface EntriesFrame {
  type: 'entries'
  entries: unknown[]
  last: boolean
}

/** Ends an exchange: the server has merged the client's entries; `digest` is its root afterwards. */
export interface DoneFrame {
  type: 'done'
  digest: string
}

/** Refusal or abort, with a short reason (`busy`, or a `SyncFailure`). */
export interface ErrorFrame {
  type: 'error'
  reason: string
}

const MAX_REASON_LENGTH = 200
const DIGEST_PATTERN = /^[A-Za-z0-9+/]{43}=$/
const utf8 = new TextDecoder('utf-8', { fatal: true })

export function encodeFrame(frame: Frame): Uint8Array {
  return Buffer.from(JSON.stringify(frame))
}

/** Digest bytes (32) on the wire: base64, 44 characters. */
export function encodeDigest(digest: Buffer): string {
  return digest.toString('base64')
}

/** Reads and validates one frame. Throws `SyncSessionError('malformed-frame')` naming what was wrong. */
export function decodeFrame(bytes: Uint8Array | Uint8ArrayList): Frame {
  let text: string
  let json: unknown
  try {
    text = utf8.decode(bytes instanceof Uint8Array ? bytes : bytes.subarray())
  } catch {
    throw malformed('frame is not UTF-8')
  }
  try {
    json = JSON.parse(text)
  } catch {
    throw malformed('frame is not JSON')
  }
  if (!isRecord(json)) throw malformed('frame must be a JSON object')
  switch (json.type) {
    case 'hello':
      return { type: 'hello', digest: digest(json, 'digest'), entries: count(json, 'entries') }
    case 'get-digests':
      return getDigests(json)
    case 'digests': {
      const digests = json.digests
      if (!Array.isArray(digests) || digests.length > LEAF_COUNT) {
        throw malformed(`digests.digests must be an array of at most ${LEAF_COUNT} digests`)
      }
      for (const d of digests) {
        if (typeof d !== 'string' || !DIGEST_PATTERN.test(d))
          throw malformed('digests.digests holds a bad digest')
      }
      return { type: 'digests', level: level(json, 'level'), digests }
    }
    case 'get-entries':
      return { type: 'get-entries', ranges: ranges(json.ranges) }
    case 'entries': {
      if (!Array.isArray(json.entries) || json.entries.length > MAX_ENTRIES_PER_FRAME) {
        throw malformed(`entries.entries must be an array of at most ${MAX_ENTRIES_PER_FRAME} entries`)
      }
      if (typeof json.last !== 'boolean') throw malformed('entries.last must be a boolean')
      return { type: 'entries', entries: json.entries, last: json.last }
    }
    case 'done':
      return { type: 'done', digest: digest(json, 'digest') }
    case 'error': {
      const reason = json.reason
      if (typeof reason !== 'string') throw malformed('error.reason must be a string')
      return { type: 'error', reason: reason.slice(0, MAX_REASON_LENGTH) }
    }
    default:
      throw malformed(`unknown frame type ${JSON.stringify(json.type)?.slice(0, 40)}`)
  }
}

function getDigests(json: Record<string, unknown>): GetDigestsFrame {
  const parentLevel = level(json, 'parentLevel')
  const childLevel = level(json, 'level')
  if (childLevel <= parentLevel || childLevel - parentLevel > MAX_LEVELS_PER_ROUND) {
    throw malformed(`get-digests.level must be 1-${MAX_LEVELS_PER_ROUND} levels below parentLevel`)
  }
  const parents = json.parents
  const width = 2 ** parentLevel
  if (!Array.isArray(parents) || parents.length === 0 || parents.length > width) {
    throw malformed(`get-digests.parents must be an array of 1-${width} node indices`)
  }
  let previous = -1
  for (const p of parents) {
    if (!Number.isInteger(p) || p <= previous || p >= width) {
      throw malformed(`get-digests.parents must be increasing integers below ${width}`)
    }
    previous = p
  }
  return { type: 'get-digests', parentLevel, parents, level: childLevel }
}

function ranges(input: unknown): Array<[number, number]> {
  if (!Array.isArray(input) || input.length === 0 || input.length > LEAF_COUNT / 2) {
    throw malformed(`get-entries.ranges must be an array of 1-${LEAF_COUNT / 2} ranges`)
  }
  let previousEnd = -1
  for (const range of input) {
    if (
      !Array.isArray(range) ||
      range.length !== 2 ||
      !Number.isInteger(range[0]) ||
      !Number.isInteger(range[1]) ||
      range[0] <= previousEnd ||
      range[1] <= range[0] ||
      range[1] > LEAF_COUNT
    ) {
      throw malformed(
        `get-entries.ranges must be sorted, disjoint [from, to) leaf ranges within 0-${LEAF_COUNT}`,
      )
    }
    previousEnd = range[1]
  }
  return input as Array<[number, number]>
}

function digest(json: Record<string, unknown>, field: string): string {
  const value = json[field]
  if (typeof value !== 'string' || !DIGEST_PATTERN.test(value)) {
    throw malformed(`${json.type}.${field} must be a base64 32-byte digest`)
  }
  return value
}

function count(json: Record<string, unknown>, field: string): number {
  const value = json[field]
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw malformed(`${json.type}.${field} must be a non-negative integer`)
  }
  return value as number
}

function level(json: Record<string, unknown>, field: string): number {
  const value = json[field]
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > LEAF_BITS) {
    throw malformed(`${json.type}.${field} must be a tree level 0-${LEAF_BITS}`)
  }
  return value as number
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function malformed(message: string): SyncSessionError {
  return new SyncSessionError('malformed-frame', message)
}
