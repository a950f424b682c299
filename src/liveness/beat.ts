import { isIdentifier } from '../model/index.ts'
import { BeatError } from './errors.ts'

/**
 * Largest beat accepted from a peer, bytes. Ours are about 70; the rest is room for fields added
 * later. Anything larger is rejected by the topic validator (and lowers the sender's gossipsub score).
 */
export const MAX_BEAT_BYTES = 512

/** Hex characters of the replica digest a beat carries: enough to notice a difference, 8 bytes. */
export const DIGEST_PREFIX_CHARS = 16

/**
 * A liveness beat, published on `BEATS_TOPIC` every heartbeat interval. Compact JSON with one-letter
 * keys, because gossipsub carries each beat to every node, up to D times: the beat is what an idle
 * cluster spends its bandwidth on. Wire format, append-only: a new field gets a new key, old readers
 * ignore keys they do not know, and a change of meaning needs a new topic version.
 *
 * `{"n":"node-a","t":1764244800000,"s":42,"d":"0123456789abcdef"}`
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
}

const DIGEST_PREFIX = new RegExp(`^[0-9a-f]{${DIGEST_PREFIX_CHARS}}$`)
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** The digest prefix a beat carries for a full replica digest. */
export function digestPrefix(digest: string): string {
  return digest.slice(0, DIGEST_PREFIX_CHARS)
}

export function encodeBeat(beat: Beat): Uint8Array {
  return encoder.encode(JSON.stringify({ n: beat.n, t: beat.t, s: beat.s, d: beat.d }))
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
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new BeatError('malformed', 'beat must be a JSON object')
  }
  const { n, t, s, d } = input as Record<string, unknown>
  if (!isIdentifier(n)) throw new BeatError('malformed', 'beat.n must be a node id')
  if (!Number.isSafeInteger(t) || (t as number) < 0)
    throw new BeatError('malformed', 'beat.t must be a time in ms')
  if (!Number.isSafeInteger(s) || (s as number) < 0)
    throw new BeatError('malformed', 'beat.s must be a sequence number')
  if (typeof d !== 'string' || !DIGEST_PREFIX.test(d)) {
    throw new BeatError('malformed', `beat.d must be ${DIGEST_PREFIX_CHARS} lowercase hex characters`)
  }
  return { n, t: t as number, s: s as number, d }
}
