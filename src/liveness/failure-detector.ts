import { EventEmitter } from 'node:events'
import type { Node } from '../model/index.ts'
import type { Change } from '../replica/change.ts'
import { checkBeatSignature, signs } from '../replica/node-signature.ts'
import type { Replica } from '../replica/replica.ts'
import { emitSafely } from '../support/emit-safely.ts'
import { InitError } from '../support/init-error.ts'
import { jittered } from '../support/jitter.ts'
import type { Logger } from '../support/logger.ts'
import type { Startable } from '../support/startable.ts'
import { type Beat, decodeBeat, digestPrefix } from './beat.ts'
import {
  BEAT_OUTCOMES,
  type BeatOutcome,
  type FailureDetectorEvents,
  type LivenessEntry,
  MAX_MISMATCH_BEATS,
  MAX_UNRECORDED_NODES,
} from './detector-types.ts'
import type { BeatError } from './errors.ts'
import {
  classify,
  type LivenessStatus,
  type LivenessThresholds,
  type LivenessThresholdsInit,
  resolveThresholds,
} from './liveness-state.ts'

export interface FailureDetectorInit extends LivenessThresholdsInit {
  /**
   * Consecutive beats whose digest prefix differs from ours before `digest:mismatch` is emitted for
   * that peer. 2 rides out a change still in flight when the beat was sent. While the mismatch
   * persists (say, a sync that keeps failing), the count doubles after each event, up to
   * `MAX_MISMATCH_BEATS`; a matching beat resets it.
   * @default 2
   */
  digestMismatchBeats?: number
}

/** Where beats arrive from: `FrameChannel` (one hop from directly connected peers). */
export interface BeatSource {
  on(event: 'frame', listener: (from: string, data: Uint8Array) => void): unknown
  on(event: 'oversized', listener: (from: string) => void): unknown
  off(event: 'frame', listener: (from: string, data: Uint8Array) => void): unknown
  off(event: 'oversized', listener: (from: string) => void): unknown
}

export interface FailureDetectorComponents {
  /** Frames heard from peers; each is judged by `receive`. */
  beats: BeatSource
  /** Node records (time of last record write, peer id) and our digest. */
  replica: Pick<Replica, 'on' | 'off' | 'nodes' | 'get' | 'digest'>
  log: Logger
  /** Our own node id: never tracked, always `alive`. */
  nodeId: string
}

interface Tracked {
  nodeId: string
  status: LivenessStatus | undefined
  /** `lastHeartbeat` of its record, capped at our clock; undefined without a record. */
  recordMs: number | undefined
  lastBeatMs: number | undefined
  /** When a relay (`Beat.h`) last told us of a newer beat of this node, local ms. */
  relayedMs: number | undefined
  /** `t` of the newest beat of this node we know of, heard directly or relayed (its clock). */
  newestT: number
  /** The node's own signature of `newestT` (`Beat.g`), relayed with it; none from a node that does not sign. */
  newestSignature: string | undefined
  /** `t` and `s` of the last accepted beat, to tell a late copy from a new beat. */
  beatT: number
  beatS: number
  beatPeerId: string | undefined
  mismatchStreak: number
  mismatchLimit: number
  /** Whether its last beat carried our digest (undefined before its first). */
  inSync?: boolean
}

const NEVER = Number.NEGATIVE_INFINITY

function lastSeenOf(t: Tracked): number {
  return Math.max(t.recordMs ?? NEVER, t.lastBeatMs ?? NEVER, t.relayedMs ?? NEVER)
}

/** The peer id in `nodeId`'s record, if we hold one: the only peer whose beats speak for that node. */
function expectedPeerIdOf(replica: Pick<Replica, 'get'>, nodeId: string): string | undefined {
  const peerId = replica.get('node', nodeId)?.peerId
  return typeof peerId === 'string' ? peerId : undefined
}

/**
 * Tracks, per node id, the last time we had evidence it was alive — its beat from a direct peer,
 * another node's beat relaying that it heard a newer beat of it (`Beat.h`), or its node record
 * arriving in the replica — and turns silence into `suspect` and `unreachable` (thresholds and
 * detection time: `liveness-state.ts`). Emits `node:*` on transitions only (the first classification
 * of a node counts as one) and `digest:mismatch` for anti-entropy. `relays` is what our own beats relay.
 *
 * Time is our own clock throughout: evidence counts when it arrives, not when its sender says it was
 * sent, so clock skew between nodes does not matter. A record's `lastHeartbeat` (the sender's clock)
 * is only a starting point, capped at our clock, for a node we have not heard a beat from.
 */
export class FailureDetector extends EventEmitter<FailureDetectorEvents> implements Startable {
  readonly thresholds: LivenessThresholds
  /** Relays that counted as hearing from a node, and relays refused for want of its signature. */
  readonly relayStats = { believed: 0, refused: 0 }
  readonly digestMismatchBeats: number
  readonly #components: FailureDetectorComponents
  readonly #log: Logger
  readonly #tracked = new Map<string, Tracked>()
  readonly #counts = new Map<BeatOutcome, number>()
  readonly #warnedPeers = new Set<string>()
  #running = false
  #startedAt = 0
  #unrecorded = 0
  #timer: ReturnType<typeof setTimeout> | undefined

  constructor(init: FailureDetectorInit, components: FailureDetectorComponents) {
    super()
    this.thresholds = resolveThresholds(init)
    const beats = init.digestMismatchBeats ?? 2
    if (!Number.isInteger(beats) || beats < 1 || beats > MAX_MISMATCH_BEATS) {
      throw new InitError('digestMismatchBeats', `must be an integer 1-${MAX_MISMATCH_BEATS}, got ${beats}`)
    }
    this.digestMismatchBeats = beats
    this.#components = components
    this.#log = components.log
  }

  get isStarted(): boolean {
    return this.#running
  }

  /** Listens to beats and the replica, learns the nodes in the replica. Idempotent. */
  start(): void {
    if (this.#running) return
    const { beats } = this.#components
    this.#running = true
    this.#startedAt = Date.now()
    beats.on('frame', this.#onFrame)
    beats.on('oversized', this.#onOversized)
    this.#components.replica.on('change', this.#onChange)
    for (const node of this.#components.replica.nodes()) this.#learnRecord(node, this.#startedAt)
    this.#schedule()
  }

  /** Removes the listeners, cancels the timer and forgets every node. */
  stop(): void {
    if (!this.#running) return
    const { beats } = this.#components
    this.#running = false
    clearTimeout(this.#timer)
    this.#timer = undefined
    beats.off('frame', this.#onFrame)
    beats.off('oversized', this.#onOversized)
    this.#components.replica.off('change', this.#onChange)
    this.#tracked.clear()
    this.#warnedPeers.clear()
    this.#unrecorded = 0
  }

  /** Our belief about a node; undefined for a node we know nothing of. Our own node is `alive`. */
  status(nodeId: string): LivenessStatus | undefined {
    if (nodeId === this.#components.nodeId) return 'alive'
    return this.#tracked.get(nodeId)?.status
  }

  /** When we last heard from a node, local ms (our own node: now). */
  lastSeen(nodeId: string): number | undefined {
    if (nodeId === this.#components.nodeId) return Date.now()
    const t = this.#tracked.get(nodeId)
    return t === undefined ? undefined : lastSeenOf(t)
  }

  /**
   * Whether a node's last beat carried the digest of our replica (the two hold the same state); our
   * own node always; undefined before its first beat.
   */
  inSync(nodeId: string): boolean | undefined {
    if (nodeId === this.#components.nodeId) return true
    return this.#tracked.get(nodeId)?.inSync
  }

  /** Every known node, ours included, by id. */
  snapshot(): LivenessEntry[] {
    const self: LivenessEntry = {
      nodeId: this.#components.nodeId,
      status: 'alive',
      lastSeenMs: Date.now(),
      lastBeatMs: undefined,
      peerId: undefined,
    }
    const rows = [self]
    for (const t of this.#tracked.values()) {
      if (t.status === undefined) continue
      rows.push({
        nodeId: t.nodeId,
        status: t.status,
        lastSeenMs: lastSeenOf(t),
        lastBeatMs: t.lastBeatMs,
        peerId: t.beatPeerId,
      })
    }
    return rows.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0))
  }

  /** How many known nodes (ours included) are in each status, for the `nodes_by_liveness` metric. */
  statusCounts(): Record<LivenessStatus, number> {
    const counts: Record<LivenessStatus, number> = { alive: 1, suspect: 0, unreachable: 0 }
    for (const t of this.#tracked.values()) if (t.status !== undefined) counts[t.status]++
    return counts
  }

  /** How many beats had each validation outcome since construction (for metrics). */
  counts(): Record<BeatOutcome, number> {
    const out = {} as Record<BeatOutcome, number>
    for (const outcome of BEAT_OUTCOMES) out[outcome] = this.#counts.get(outcome) ?? 0
    return out
  }

  /**
   * What our beats relay: for each other node we believe alive, the `t` of its newest beat we know of
   * (`Beat.h`), and that node's own signature of it where it sent one (`Beat.r`).
   */
  relays(): Required<Pick<Beat, 'h' | 'r'>> {
    const h: Record<string, number> = {}
    const r: Record<string, string> = {}
    for (const t of this.#tracked.values()) {
      if (t.status !== 'alive' || t.newestT < 0) continue
      h[t.nodeId] = t.newestT
      if (t.newestSignature !== undefined) r[t.nodeId] = t.newestSignature
    }
    return { h, r }
  }

  #schedule(): void {
    this.#timer = setTimeout(this.#sweep, jittered(this.thresholds.checkIntervalMs))
  }

  #sweep = (): void => {
    this.#timer = undefined
    if (!this.#running) return
    const now = Date.now()
    for (const t of [...this.#tracked.values()]) this.#evaluate(t, now)
    this.#schedule()
  }

  /** Reclassifies a node; emits on a change; forgets a node without a record once unreachable. */
  #evaluate(t: Tracked, now: number): void {
    const lastSeenMs = lastSeenOf(t)
    const status = classify(now - lastSeenMs, now - this.#startedAt, this.thresholds)
    if (status === 'unreachable' && t.recordMs === undefined) this.#forget(t.nodeId)
    if (status === t.status) return
    const previous = t.status
    t.status = status
    this.#log.debug(
      { nodeId: t.nodeId, status, previous, silentMs: now - lastSeenMs },
      'node liveness changed',
    )
    this.#notify(`node:${status}`, { nodeId: t.nodeId, lastSeenMs, previous })
  }

  /**
   * Emits without letting a listener's exception escape: ours run inside gossipsub's event dispatch,
   * the replica's change event and timers, where a throw would crash the agent or fail a write.
   */
  #notify<K extends keyof FailureDetectorEvents>(event: K, ...args: FailureDetectorEvents[K]): void {
    emitSafely(this, this.#log, 'failure detector', event, args)
  }

  #track(nodeId: string): Tracked {
    let t = this.#tracked.get(nodeId)
    if (t === undefined) {
      t = {
        nodeId,
        status: undefined,
        recordMs: undefined,
        lastBeatMs: undefined,
        relayedMs: undefined,
        newestT: -1,
        newestSignature: undefined,
        beatT: -1,
        beatS: -1,
        beatPeerId: undefined,
        mismatchStreak: 0,
        mismatchLimit: this.digestMismatchBeats,
      }
      this.#tracked.set(nodeId, t)
      this.#unrecorded++
    }
    return t
  }

  #forget(nodeId: string): void {
    const t = this.#tracked.get(nodeId)
    if (t === undefined) return
    if (t.recordMs === undefined) this.#unrecorded--
    this.#tracked.delete(nodeId)
  }

  #learnRecord(node: Node, now: number): void {
    if (node.id === this.#components.nodeId) return
    const t = this.#track(node.id)
    if (t.recordMs === undefined) this.#unrecorded--
    const written = Date.parse(node.lastHeartbeat)
    t.recordMs = Math.max(t.recordMs ?? NEVER, Math.min(Number.isNaN(written) ? NEVER : written, now))
    this.#evaluate(t, now)
  }

  #onChange = (changes: Change[]): void => {
    const now = Date.now()
    for (const change of changes) {
      if (change.kind !== 'node') continue
      // An admin delete: stop tracking. If the node is alive, its beats and its re-asserted record
      // bring it back within a heartbeat.
      if (change.value === null) this.#forget(change.id)
      else this.#learnRecord(change.value as Node, now)
    }
  }

  /**
   * Judges one frame from directly connected peer `from` (a peer id, proven by the connection) and,
   * when accepted, counts it as hearing from its node and from every node it relays. Public so tests
   * can feed frames without a network.
   */
  receive(from: string, data: Uint8Array): BeatOutcome {
    let beat: Beat
    try {
      beat = decodeBeat(data)
    } catch (err) {
      return this.#count(
        (err as BeatError).reason === 'oversized' ? 'rejected-oversized' : 'rejected-malformed',
        from,
      )
    }
    const outcome = this.#judge(from, beat)
    this.#count(outcome, from)
    if (outcome !== 'accepted') return outcome
    const now = Date.now()
    const t = this.#track(beat.n)
    t.lastBeatMs = now
    t.beatT = beat.t
    t.beatS = beat.s
    t.beatPeerId = from
    if (beat.t > t.newestT) {
      t.newestT = beat.t
      t.newestSignature = beat.g
    }
    this.#evaluate(t, now)
    // Relays only from a node whose record we hold and whose peer id it names: a peer with no record
    // (anyone holding the cluster key) cannot keep a dead node alive with made-up beat times.
    if (beat.h !== undefined && expectedPeerIdOf(this.#components.replica, beat.n) === from) {
      this.#learnRelays(beat, now)
    }
    this.#compareDigest(t, beat, from)
    return outcome
  }

  #count(outcome: BeatOutcome, from: string): BeatOutcome {
    this.#counts.set(outcome, (this.#counts.get(outcome) ?? 0) + 1)
    if (outcome.startsWith('rejected-')) this.#log.debug({ outcome, from }, 'beat rejected')
    return outcome
  }

  #judge(from: string, beat: Beat): BeatOutcome {
    if (beat.n === this.#components.nodeId) {
      if (!this.#warnedPeers.has(from)) {
        this.#warnedPeers.add(from)
        this.#log.warn(
          { nodeId: beat.n, peerId: from },
          'another peer beats with our node id (is OB_NODE_ID used twice?)',
        )
      }
      return 'ignored-self'
    }
    const expected = expectedPeerIdOf(this.#components.replica, beat.n)
    const t = this.#tracked.get(beat.n)
    if (expected !== undefined && expected !== from) return 'ignored-peer-mismatch'
    if (
      expected === undefined &&
      t?.beatPeerId !== undefined &&
      t.beatPeerId !== from &&
      t.status !== 'unreachable'
    ) {
      return 'ignored-peer-mismatch'
    }
    if (t === undefined && this.#unrecorded >= MAX_UNRECORDED_NODES) return 'ignored-capacity'
    // Older than the last beat heard (say, from a second connection during a reconnect). A restarted
    // sender resets `s` but its `t` moves on; a sender whose clock stepped back still counts `s` up.
    if (t !== undefined && t.beatPeerId === from && beat.s <= t.beatS && beat.t <= t.beatT)
      return 'ignored-stale'
    return 'accepted'
  }

  /**
   * Counts each relay of an accepted beat that names a newer beat than we knew as hearing from that
   * node. Only for nodes whose record we hold: those are never forgotten, so `newestT` is never lost
   * and an old beat relayed late cannot bring a dead node back. A node whose record says it signs
   * beats counts only with its own signature of that time (`Beat.r`); the first relay that fails
   * ends the beat's relays (one wasted verify per beat, whatever a member sends).
   */
  #learnRelays(beat: Beat, now: number): void {
    for (const [nodeId, beatT] of Object.entries(beat.h!)) {
      if (nodeId === beat.n) continue
      const t = this.#tracked.get(nodeId)
      if (t === undefined || t.recordMs === undefined || beatT <= t.newestT) continue
      const signature = beat.r?.[nodeId]
      const record = this.#components.replica.get('node', nodeId)
      if (record !== undefined && signs(record, 'beat')) {
        if (checkBeatSignature(signature, nodeId, beatT, record) !== 'valid') {
          this.relayStats.refused++
          this.#log.debug({ nodeId, relay: beat.n }, 'relay without the node’s signature refused')
          return
        }
      }
      this.relayStats.believed++
      t.newestT = beatT
      t.newestSignature = signature
      t.relayedMs = now
      this.#evaluate(t, now)
    }
  }

  readonly #onFrame = (from: string, data: Uint8Array): void => {
    this.receive(from, data)
  }

  readonly #onOversized = (from: string): void => {
    this.#count('rejected-oversized', from)
  }

  /** Counts beats whose digest differs from ours at receive time; emits after a run of them. */
  #compareDigest(t: Tracked, beat: Beat, from: string): void {
    const inSync = beat.d === digestPrefix(this.#components.replica.digest())
    if (t.inSync !== inSync) {
      t.inSync = inSync
      this.#notify('node:sync', { nodeId: t.nodeId, inSync })
    }
    if (inSync) {
      t.mismatchStreak = 0
      t.mismatchLimit = this.digestMismatchBeats
      return
    }
    t.mismatchStreak++
    if (t.mismatchStreak < t.mismatchLimit) return
    t.mismatchStreak = 0
    t.mismatchLimit = Math.min(t.mismatchLimit * 2, MAX_MISMATCH_BEATS)
    this.#notify('digest:mismatch', { peerId: from, nodeId: t.nodeId })
  }
}

/** `failureDetector(init)(components)`: the factory form of `new FailureDetector(init, components)`. */
export function failureDetector(
  init: FailureDetectorInit = {},
): (components: FailureDetectorComponents) => FailureDetector {
  return (components) => new FailureDetector(init, components)
}
