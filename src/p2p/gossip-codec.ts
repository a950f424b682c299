import { type Change, decodeChange } from '../replica/change.ts'

/**
 * Why a gossip message was dropped. Doubles as a log field and a metric label. All but `rate-limited`
 * (valid, but its sender sends faster than allowed; `gossip.ts`) are decided by `decodeChangesMessage`.
 */
export type GossipRejection =
  | 'oversized'
  | 'not-json'
  | 'bad-shape'
  | 'invalid-change'
  | 'drift'
  | 'rate-limited'

/** A gossip message this agent will not merge or forward; `reason` names the rule it broke. */
export class GossipMessageError extends Error {
  override readonly name = 'GossipMessageError'
  readonly reason: GossipRejection

  constructor(reason: GossipRejection, detail?: string) {
    super(detail ?? reason)
    this.reason = reason
  }
}

/** Wire form of a batch on the changes topic: `{"changes": [Change, ...]}`. */
interface ChangesMessage {
  changes: unknown[]
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
/** `{"changes":[` and `]}`. */
const ENVELOPE_BYTES = 16

/** Splits changes into messages of at most `maxMessageBytes` (a change too large goes alone). */
export function* encodeChangesMessages(
  changes: Iterable<Change>,
  maxMessageBytes: number,
): Generator<Uint8Array> {
  let batch: string[] = []
  let bytes = ENVELOPE_BYTES
  const emit = () => encoder.encode(`{"changes":[${batch.join(',')}]}`)
  for (const change of changes) {
    const json = JSON.stringify(change)
    const size = Buffer.byteLength(json) + 1
    if (batch.length > 0 && bytes + size > maxMessageBytes) {
      yield emit()
      batch = []
      bytes = ENVELOPE_BYTES
    }
    batch.push(json)
    bytes += size
  }
  if (batch.length > 0) yield emit()
}

export interface DecodeLimits {
  maxMessageBytes: number
  /** Largest clock lead accepted, ms, over `nowMs` (the local wall clock). */
  maxDriftMs: number
  nowMs: number
}

/**
 * Reads one message of the changes topic: size, JSON, shape, every change (`decodeChange`), clock
 * drift. All or nothing: one bad change rejects the whole message, which gossipsub then neither
 * forwards nor delivers, and counts against its sender.
 *
 * @throws GossipMessageError
 */
export function decodeChangesMessage(data: Uint8Array, limits: DecodeLimits): Change[] {
  if (data.byteLength > limits.maxMessageBytes)
    throw new GossipMessageError('oversized', `${data.byteLength} bytes`)
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(data))
  } catch {
    throw new GossipMessageError('not-json')
  }
  const list = (parsed as Partial<ChangesMessage> | null)?.changes
  if (!Array.isArray(list) || list.length === 0 || Object.keys(parsed as object).length !== 1) {
    throw new GossipMessageError('bad-shape', 'expected {"changes": [...]} with at least one change')
  }
  return list.map((entry, i) => {
    let change: Change
    try {
      change = decodeChange(entry, `changes[${i}]`)
    } catch (err) {
      throw new GossipMessageError('invalid-change', (err as Error).message)
    }
    const lead = change.version.ts - limits.nowMs
    if (lead > limits.maxDriftMs) {
      throw new GossipMessageError(
        'drift',
        `changes[${i}] is ${lead} ms ahead (writer ${change.version.node})`,
      )
    }
    return change
  })
}
