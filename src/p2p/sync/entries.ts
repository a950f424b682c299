import { ENTITY_KINDS } from '../../model/index.ts'
import { MAX_ENTRIES_PER_FRAME } from '../../model/wire.ts'
import { type Change, decodeChange, entityKey } from '../../replica/change.ts'
import { compareChanges } from '../../replica/lww.ts'
import { APPLY_BATCH, type Replica } from '../../replica/replica.ts'
import type { Logger } from '../../support/logger.ts'
import { SyncSessionError } from './errors.ts'
import type { FramedStream } from './framed-stream.ts'
import type { SessionResult } from './session.ts'

/**
 * Target size of an `entries` frame, bytes (frames may not exceed `maxFrameBytes` either). Smaller
 * than the cap so that the receiver starts merging early and memory per frame stays low.
 */
const ENTRIES_FRAME_TARGET_BYTES = 256 * 1024

const FRAME_HEAD = '{"type":"entries","last":false,"entries":['
const LAST_FRAME_HEAD = '{"type":"entries","last":true,"entries":['
const FRAME_TAIL = ']}'
const FRAME_OVERHEAD = Math.max(FRAME_HEAD.length, LAST_FRAME_HEAD.length) + FRAME_TAIL.length

/**
 * Streams `changes` as `entries` frames: each entry is serialised on its own and frames are joined
 * from those pieces, so no JSON string of the whole list is ever built. The final frame has
 * `last: true` (an empty list is one such frame). An entry too large for any frame is skipped with
 * `onTooLarge`. Returns how many entries were sent.
 */
export async function sendEntries(
  stream: Pick<FramedStream, 'send'>,
  changes: Iterable<Change>,
  maxFrameBytes: number,
  onTooLarge: (change: Change, bytes: number) => void,
): Promise<number> {
  const target = Math.min(ENTRIES_FRAME_TARGET_BYTES, maxFrameBytes) - FRAME_OVERHEAD
  const limit = maxFrameBytes - FRAME_OVERHEAD
  let parts: string[] = []
  let size = 0
  let sent = 0
  for (const change of changes) {
    const json = JSON.stringify({
      kind: change.kind,
      id: change.id,
      version: change.version,
      value: change.value,
      ...(change.basedOn === undefined ? {} : { basedOn: change.basedOn }),
    })
    const bytes = Buffer.byteLength(json) + 1
    if (bytes > limit) {
      onTooLarge(change, bytes)
      continue
    }
    if (parts.length > 0 && (size + bytes > target || parts.length === MAX_ENTRIES_PER_FRAME)) {
      await stream.send(Buffer.from(FRAME_HEAD + parts.join(',') + FRAME_TAIL))
      parts = []
      size = 0
    }
    parts.push(json)
    size += bytes
    sent++
  }
  await stream.send(Buffer.from(LAST_FRAME_HEAD + parts.join(',') + FRAME_TAIL))
  return sent
}

export interface EntryReceiverInit {
  replica: Pick<Replica, 'apply' | 'maxEntities'>
  log: Logger
  /** Keep every valid received change by key, for `newerThanReceived`. */
  remember: boolean
  /** Counts valid and dropped entries and merge outcomes as they happen. */
  tally: Pick<SessionResult, 'entriesReceived' | 'rejectedEntries' | 'applied'>
}

/**
 * Takes the entries of incoming `entries` frames: validates each with `decodeChange` (a bad one is
 * dropped, counted and logged once per session), and merges the valid ones into the replica in
 * batches of `APPLY_BATCH`, keeping at most one batch in flight while the next one is decoded.
 */
export class EntryReceiver {
  /** Received changes by entity key (when `remember` is set). */
  readonly byKey = new Map<string, Change>()
  readonly #init: EntryReceiverInit
  #batch: Change[] = []
  #rejected = 0
  #inFlight: Promise<void> = Promise.resolve()

  constructor(init: EntryReceiverInit) {
    this.#init = init
  }

  async take(entries: readonly unknown[]): Promise<void> {
    const { tally, log, replica } = this.#init
    // A session never needs more than a whole replica (every kind at its limit); more is a peer
    // trying to make us validate and hold entries without end.
    const limit = ENTITY_KINDS.length * replica.maxEntities
    if (tally.entriesReceived + tally.rejectedEntries + entries.length > limit) {
      throw new SyncSessionError('too-many-entries', `more than ${limit} entries in one session`)
    }
    for (let i = 0; i < entries.length; i++) {
      let change: Change
      try {
        change = decodeChange(entries[i], 'entry')
      } catch (err) {
        if (this.#rejected++ === 0) {
          log.warn({ err: (err as Error).message }, 'anti-entropy: dropped an invalid entry from the peer')
        }
        tally.rejectedEntries++
        continue
      }
      tally.entriesReceived++
      if (this.#init.remember) this.byKey.set(entityKey(change.kind, change.id), change)
      this.#batch.push(change)
      if (this.#batch.length >= APPLY_BATCH) await this.#flush()
    }
  }

  /** Merges what is left; resolves when every received entry has been merged. */
  async finish(): Promise<void> {
    await this.#flush()
    await this.#inFlight
  }

  async #flush(): Promise<void> {
    await this.#inFlight
    if (this.#batch.length === 0) return
    const batch = this.#batch
    this.#batch = []
    const { applied } = this.#init.tally
    this.#inFlight = this.#init.replica.apply(batch, 'sync').then((outcomes) => {
      for (const outcome of outcomes) applied[outcome] = (applied[outcome] ?? 0) + 1
    })
    // Awaited by the next flush or by finish(); if the session is abandoned first, this keeps a failed
    // store write from becoming an unhandled rejection.
    this.#inFlight.catch(() => undefined)
  }
}

/**
 * Our entries the peer should get: those whose key the peer did not send, or sent as a change that
 * loses to ours in the merge order (`compareChanges`). `ours` are our entries in exactly the leaves the
 * peer sent.
 */
export function newerThanReceived(ours: Iterable<Change>, received: ReadonlyMap<string, Change>): Change[] {
  const out: Change[] = []
  for (const mine of ours) {
    const theirs = received.get(entityKey(mine.kind, mine.id))
    // The replica holds the very change it merged from the peer: nothing to compare (the common case).
    if (theirs === mine) continue
    if (theirs === undefined) {
      out.push(mine)
      continue
    }
    if (compareChanges(mine, theirs) > 0) out.push(mine)
  }
  return out
}
