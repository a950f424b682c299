import { isIdentifier } from '../model/index.ts'
import { MAX_BEAT_BYTES } from '../model/wire.ts'
import { BeatError } from './errors.ts'

/** Hex characters of the replica digest a beat carries: enough to notice a difference, 8 bytes. */
export const DIGEST_PREFIX_CHARS = 16

/**
 * A liveness beat, sent every heartbeat interval to each directly connected peer (`FrameChannel`).
 * Compact JSON with one-letter keys: beats are what an idle cluster spends its bandwidth on. Wire
 * format, append-only: a new field gets a new key, old readers ignore keys they do not know, and a
 * change of meaning needs a new protocol version.
 *
 * `{"n":"node-a","t":1764244800000,"s":42,"d":"0123456789abcdef","g":"<sig>","h":{"node-c":830},"r":{"node-c":"<sig>"}}`
 * (on the wire, `h` holds `t` minus each relayed time, which is shorter; in memory, the times).
 * `g` and `r` are new in this release: readers of the previous one ignore them.
 */
export interface Beat {
  /** Node id of the sender. Must match the `peerId` in that node's record, when we hold it. */
  readonly n: string
  /** Sender's wall clock when it sent the beat, ms since the epoch. Informational: we time by our own clock. */
  readonly t: number
  /** Sequence number, from 0 at each start of the sender's heartbeat unit. */
  readonly s: number
  /** First `DIGEST_PREFIX_CHARS` hex characters of the sender's replica digest when it sent the beat. */
  readonly d: string
  /**
   * Relayed liveness: node id → `t` of the newest beat of that node the sender has heard of (from
   * it directly, or relayed), for the nodes the sender believes alive. A receiver counts a relay as
   * hearing from the node only when it names a newer beat than any it knew: only the node itself
   * makes new beats, so relays echoing around the cluster never keep a dead node alive. `t` values
   * are compared only with others of the same node's clock, so skew between nodes does not matter.
   */
  readonly h?: Readonly<Record<string, number>>
  /**
   * The sender's signature of `(n, t)` with its node key (`NodeSigner.signBeat`): what a relay of
   * this beat carries, so that a receiver believes the node's own word rather than the relay's.
   */
  readonly g?: string
  /**
   * For relayed nodes (keys of `h`), that node's own signature of the relayed time, as it sent it in
   * `g`. A receiver counts a relay of a node whose record says it signs beats only with a signature
   * that verifies: a member cannot keep a dead node alive with made-up beat times.
   */
  readonly r?: Readonly<Record<string, string>>
}

/** An Ed25519 signature in base64: 64 bytes. */
const SIGNATURE = /^[A-Za-z0-9+/]{86}==$/

const DIGEST_PREFIX = new RegExp(`^[0-9a-f]{${DIGEST_PREFIX_CHARS}}$`)
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** The digest prefix a beat carries for a full replica digest. */
export function digestPrefix(digest: string): string {
  return digest.slice(0, DIGEST_PREFIX_CHARS)
}

/**
 * Encodes a beat. Relays go newest first and stop before the beat would exceed `maxBytes`: a node
 * left out is relayed by others, or at worst looks older to some receivers for a beat.
 */
export function encodeBeat(beat: Beat, maxBytes = MAX_BEAT_BYTES): Uint8Array {
  const head = JSON.stringify({ n: beat.n, t: beat.t, s: beat.s, d: beat.d, g: beat.g })
  const relays = Object.entries(beat.h ?? {})
  if (relays.length === 0) return encoder.encode(head)
  relays.sort((a, b) => b[1] - a[1])
  const times: string[] = []
  const signatures: string[] = []
  let bytes = head.length + 16 // `,"h":{`, `},"r":{` and `}`
  for (const [id, t] of relays) {
    const key = JSON.stringify(id)
    const time = `${key}:${beat.t - t}`
    const signature = beat.r?.[id]
    const signed = signature === undefined ? '' : `${key}:${JSON.stringify(signature)}`
    const cost = time.length + 1 + (signed === '' ? 0 : signed.length + 1)
    if (bytes + cost > maxBytes) break
    times.push(time)
    if (signed !== '') signatures.push(signed)
    bytes += cost
  }
  const r = signatures.length === 0 ? '' : `,"r":{${signatures.join(',')}}`
  return encoder.encode(`${head.slice(0, -1)},"h":{${times.join(',')}}${r}}`)
}

/**
 * Reads a beat from a peer. Throws `BeatError` with reason `oversized` (more than `MAX_BEAT_BYTES`)
 * or `malformed` (not UTF-8 JSON, not an object, or a field missing or of the wrong shape).
 */
export function decodeBeat(bytes: Uint8Array): Beat {
  if (bytes.length > MAX_BEAT_BYTES) {
    throw new BeatError('oversized', `beat of ${bytes.length} bytes exceeds ${MAX_BEAT_BYTES}`)
  }
  let input: unknown
  try {
    input = JSON.parse(decoder.decode(bytes))
  } catch {
    throw new BeatError('malformed', 'beat is not UTF-8 JSON')
  }
  if (!isPlainObject(input)) throw new BeatError('malformed', 'beat must be a JSON object')
  const { n, t, s, d, h, g, r } = input
  if (!isIdentifier(n)) throw new BeatError('malformed', 'beat.n must be a node id')
  if (!Number.isSafeInteger(t) || (t as number) < 0)
    throw new BeatError('malformed', 'beat.t must be a time in ms')
  if (!Number.isSafeInteger(s) || (s as number) < 0)
    throw new BeatError('malformed', 'beat.s must be a sequence number')
  if (typeof d !== 'string' || !DIGEST_PREFIX.test(d)) {
    throw new BeatError('malformed', `beat.d must be ${DIGEST_PREFIX_CHARS} lowercase hex characters`)
  }
  if (g !== undefined && (typeof g !== 'string' || !SIGNATURE.test(g))) {
    throw new BeatError('malformed', 'beat.g must be a base64 Ed25519 signature')
  }
  const head = { n, t: t as number, s: s as number, d, ...(g === undefined ? {} : { g }) }
  if (h === undefined) return head
  if (!isPlainObject(h)) throw new BeatError('malformed', 'beat.h must be an object of node id → ms')
  const relays = new Map<string, number>()
  for (const [id, delta] of Object.entries(h)) {
    if (!isIdentifier(id)) throw new BeatError('malformed', 'beat.h has a key that is not a node id')
    const relayed = (t as number) - (delta as number)
    if (!Number.isSafeInteger(delta) || !Number.isSafeInteger(relayed) || relayed < 0) {
      throw new BeatError('malformed', `beat.h["${id}"] must be beat.t minus a time in ms`)
    }
    relays.set(id, relayed)
  }
  if (r === undefined) return { ...head, h: Object.fromEntries(relays) }
  if (!isPlainObject(r)) throw new BeatError('malformed', 'beat.r must be an object of node id → signature')
  const signatures = new Map<string, string>()
  for (const [id, signature] of Object.entries(r)) {
    if (typeof signature !== 'string' || !SIGNATURE.test(signature)) {
      throw new BeatError('malformed', 'beat.r values must be base64 Ed25519 signatures')
    }
    // Only signatures of relayed nodes mean anything; others are dropped.
    if (relays.has(id)) signatures.set(id, signature)
  }
  return { ...head, h: Object.fromEntries(relays), r: Object.fromEntries(signatures) }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
