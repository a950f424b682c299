import { isIdentifier } from '../model/index.ts'
import { MAX_BEAT_BYTES } from '../model/wire.ts'
import { BeatError } from './errors.ts'

/** Hex characters of the replica digest a beat carries: enough to notice a difference, 8 bytes. */
export const DIGEST_PREFIX_CHARS = 16

/**
 * A liveness beat, sent every heartbeat interval to each directly connected peer (`BeatChannel`).
 * Compact JSON with one-letter keys: beats are what an idle cluster spends its bandwidth on. Wire
 * format, append-only: a new field gets a new key, old readers ignore keys they do not know, and a
 * change of meaning needs a new protocol version.
 *
 * `{"n":"node-a","t":1764244800000,"s":42,"d":"0123456789abcdef","h":{"node-c":830}}`
 * (on the wire, `h` holds `t` minus each relayed time, which is shorter; in memory, the times).
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
}

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
  const head = JSON.stringify({ n: beat.n, t: beat.t, s: beat.s, d: beat.d })
  const relays = Object.entries(beat.h ?? {})
  if (relays.length === 0) return encoder.encode(head)
  relays.sort((a, b) => b[1] - a[1])
  const parts: string[] = []
  let bytes = head.length + 8 // `,"h":{` and `}`
  for (const [id, t] of relays) {
    const part = `${JSON.stringify(id)}:${beat.t - t}`
    if (bytes + part.length + 1 > maxBytes) break
    parts.push(part)
    bytes += part.length + 1
  }
  return encoder.encode(`${head.slice(0, -1)},"h":{${parts.join(',')}}}`)
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
  const { n, t, s, d, h } = input
  if (!isIdentifier(n)) throw new BeatError('malformed', 'beat.n must be a node id')
  if (!Number.isSafeInteger(t) || (t as number) < 0)
    throw new BeatError('malformed', 'beat.t must be a time in ms')
  if (!Number.isSafeInteger(s) || (s as number) < 0)
    throw new BeatError('malformed', 'beat.s must be a sequence number')
  if (typeof d !== 'string' || !DIGEST_PREFIX.test(d)) {
    throw new BeatError('malformed', `beat.d must be ${DIGEST_PREFIX_CHARS} lowercase hex characters`)
  }
  if (h === undefined) return { n, t: t as number, s: s as number, d }
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
  return { n, t: t as number, s: s as number, d, h: Object.fromEntries(relays) }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
