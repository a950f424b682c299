import { isIdentifier } from '../../model/index.ts'
import { DIGEST_PREFIX_CHARS } from '../beat.ts'
import type { MemberState, Message, Update } from './swim.ts'

/**
 * SWIM messages on the wire (`SWIM_PROTOCOL`): one length-prefixed JSON frame each, the state
 * machine's message plus `d`, the sender's replica digest prefix (anti-entropy starts when it differs
 * from ours). Tolerant reader: keys it does not know are ignored, so a later release can add some;
 * a change of meaning needs a new protocol id.
 *
 * `{"t":"ping","seq":7,"from":"node-a","u":[{"s":"suspect","n":"node-c","i":1765000000000,"f":"node-b"}],"d":"0123456789abcdef"}`
 */
export type SwimFrame = Message & { d: string }

/** Largest frame sent or accepted, bytes: 8 updates of a few hundred bytes each, with room. */
export const MAX_SWIM_FRAME_BYTES = 16 * 1024

/** Most updates read from one frame; the rest are ignored. */
export const MAX_FRAME_UPDATES = 16

const TYPES = new Set(['ping', 'ack', 'nack', 'ping-req', 'gossip'])
const STATES = new Set<MemberState>(['alive', 'suspect', 'dead'])
const SIGNATURE = /^[A-Za-z0-9+/]{86}==$/
const DIGEST_PREFIX = new RegExp(`^[0-9a-f]{${DIGEST_PREFIX_CHARS}}$`)
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Why a frame was refused; a log field and a metric label. */
export class SwimFrameError extends Error {
  override readonly name = 'SwimFrameError'
}

export function encodeSwimFrame(frame: SwimFrame): Uint8Array {
  return encoder.encode(JSON.stringify(frame))
}

/** Reads a frame from a peer; throws `SwimFrameError` naming the first problem. */
export function decodeSwimFrame(bytes: Uint8Array): SwimFrame {
  if (bytes.length > MAX_SWIM_FRAME_BYTES)
    throw new SwimFrameError(`frame of ${bytes.length} bytes exceeds ${MAX_SWIM_FRAME_BYTES}`)
  let input: unknown
  try {
    input = JSON.parse(decoder.decode(bytes))
  } catch {
    throw new SwimFrameError('frame is not UTF-8 JSON')
  }
  if (!isObject(input)) throw new SwimFrameError('frame must be a JSON object')
  const { t, seq, from, target, u, d } = input
  if (typeof t !== 'string' || !TYPES.has(t)) throw new SwimFrameError('t must be a message type')
  if (!isIdentifier(from)) throw new SwimFrameError('from must be a node id')
  if (typeof d !== 'string' || !DIGEST_PREFIX.test(d))
    throw new SwimFrameError(`d must be ${DIGEST_PREFIX_CHARS} lowercase hex characters`)
  if (!Array.isArray(u)) throw new SwimFrameError('u must be an array of updates')
  const updates = u.slice(0, MAX_FRAME_UPDATES).map(readUpdate)
  if (t === 'gossip') return { t, from, u: updates, d }
  if (!isCount(seq)) throw new SwimFrameError('seq must be a sequence number')
  if (t !== 'ping-req') return { t: t as 'ping' | 'ack' | 'nack', seq, from, u: updates, d }
  if (!isIdentifier(target)) throw new SwimFrameError('target must be a node id')
  return { t, seq, from, target, u: updates, d }
}

function readUpdate(input: unknown): Update {
  if (!isObject(input)) throw new SwimFrameError('an update must be an object')
  const { s, n, i, f, g } = input
  if (typeof s !== 'string' || !STATES.has(s as MemberState))
    throw new SwimFrameError('update.s must be alive, suspect or dead')
  if (!isIdentifier(n)) throw new SwimFrameError('update.n must be a node id')
  if (!isCount(i)) throw new SwimFrameError('update.i must be an incarnation number')
  if (f !== undefined && !isIdentifier(f)) throw new SwimFrameError('update.f must be a node id')
  if (g !== undefined && (typeof g !== 'string' || !SIGNATURE.test(g)))
    throw new SwimFrameError('update.g must be a base64 Ed25519 signature')
  return {
    s: s as MemberState,
    n,
    i,
    ...(f === undefined ? {} : { f }),
    ...(g === undefined ? {} : { g }),
  }
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
