import { EventEmitter } from 'node:events'
import type { Node } from '../model/index.ts'
import type { Change } from '../replica/change.ts'
import { checkAliveSignature, type NodeSigner, signs } from '../replica/node-signature.ts'
import type { Replica } from '../replica/replica.ts'
import { emitSafely } from '../support/emit-safely.ts'
import { positiveMs } from '../support/init-error.ts'
import type { Logger } from '../support/logger.ts'
import type { Startable } from '../support/startable.ts'
import { digestPrefix } from './beat.ts'
import type { FailureDetectorEvents, LivenessEntry } from './detector-types.ts'
import { DEFAULT_HEARTBEAT_INTERVAL_MS, recordRefreshFor } from './heartbeat.ts'
import type { LivenessStatus } from './liveness-state.ts'
import { decodeSwimFrame, encodeSwimFrame, SwimFrameError } from './swim/codec.ts'
import { type MemberState, type Message, Swim, type SwimConfig } from './swim/swim.ts'

/**
 * Where SWIM frames go and come from: UDP datagrams to members whose record declares `datagram`
 * (`DatagramChannel`), else `FrameChannel` on `SWIM_PROTOCOL`, dialling when needed.
 */
export interface SwimTransport {
  /** Sends a frame (`message`, encoded as `data`) to the member of `record`, whose peer id is `peerId`. */
  send(peerId: string, data: Uint8Array, record: Node, message: Message): boolean
  /** Closes the connections to a peer that answers nothing on them, though it is up. */
  reset(peerId: string, reason: string): void
  on(event: 'frame', listener: (from: string, data: Uint8Array) => void): unknown
  off(event: 'frame', listener: (from: string, data: Uint8Array) => void): unknown
}

export interface SwimDetectorInit {
  /**
   * `OB_HEARTBEAT_MS`: one probe per quarter of it (500 ms at the default), and the other SWIM times
   * in proportion (docs/protocols.md, Liveness).
   * @default 2000
   */
  heartbeatIntervalMs?: number
  /** State machine options over the ones derived from the heartbeat interval. */
  swim?: Partial<SwimConfig>
  /**
   * A node whose record is older than this when we learn it (a live node rewrites it every
   * `recordRefreshFor(cluster size)`) is held dead until it speaks to us. @default 3 record refreshes
   */
  staleRecordMs?: number
  /** Frames in a row carrying another digest than ours before `digest:mismatch`. @default 2 */
  digestMismatchFrames?: number
}

export interface SwimDetectorComponents {
  transport: SwimTransport
  /** Members (records whose `signs` lists `alive`), their peer ids and addresses, and our digest. */
  replica: Pick<Replica, 'on' | 'off' | 'nodes' | 'get' | 'digest' | 'counts'>
  signer: Pick<NodeSigner, 'signAlive'>
  nodeId: string
  log: Logger
}

/** What happened to frames from peers, for metrics and logs. */
export type SwimFrameOutcome =
  | 'accepted'
  | 'rejected-malformed'
  | 'ignored-peer-mismatch'
  | 'ignored-not-member'

/** Peers whose digest streaks are tracked at most. */
const MAX_TRACKED_PEERS = 4096

/** Probes in a row answered through others only before our connections to that member are closed. */
const HALF_OPEN_PROBES = 2

const STATUS: Record<MemberState, LivenessStatus> = {
  alive: 'alive',
  suspect: 'suspect',
  dead: 'unreachable',
}

/** The SWIM options for a heartbeat interval: probes 4 times per interval, the rest in proportion. */
export function swimTimings(heartbeatIntervalMs: number): Partial<SwimConfig> {
  const probeIntervalMs = heartbeatIntervalMs / 4
  return {
    probeIntervalMs,
    probeTimeoutMs: probeIntervalMs * 0.4,
    gossipIntervalMs: probeIntervalMs * 0.4,
    reconnectIntervalMs: probeIntervalMs * 10,
  }
}

/** Whether a node record is of a node that speaks SWIM (this release on). */
export function speaksSwim(record: Node | undefined): boolean {
  return record !== undefined && signs(record, 'alive')
}

/**
 * The agent's side of SWIM (`swim/swim.ts`): runs the state machine on a timer, sends its messages to
 * the members' peer ids (from their records, dialling their multiaddrs), hands it frames whose sender
 * is the peer its record names, checks `alive` signatures against the records' keys, and emits the
 * same events as the beat detector (`node:*`, `digest:mismatch`, `node:sync`). Members are the nodes
 * whose record lists `alive` in `signs`; the others (nodes of the previous release) are the beat
 * detector's (`liveness.ts` joins the two).
 */
export class SwimDetector extends EventEmitter<FailureDetectorEvents> implements Startable {
  readonly counts: Record<SwimFrameOutcome, number> = {
    accepted: 0,
    'rejected-malformed': 0,
    'ignored-peer-mismatch': 0,
    'ignored-not-member': 0,
  }
  /** Frames sent, their bytes, and the largest: what SWIM costs (bench:cluster reports it). */
  readonly sent = { frames: 0, bytes: 0, largest: 0 }
  readonly #components: SwimDetectorComponents
  readonly #log: Logger
  readonly #config: Partial<SwimConfig>
  readonly #staleRecordMs: number | undefined
  readonly #mismatchFrames: number
  readonly #heard = new Map<string, number>()
  readonly #status = new Map<string, LivenessStatus>()
  readonly #inSync = new Map<string, boolean>()
  readonly #mismatches = new Map<string, number>()
  readonly #indirectOnly = new Map<string, number>()
  #swim: Swim | undefined
  #timer: ReturnType<typeof setInterval> | undefined

  constructor(init: SwimDetectorInit, components: SwimDetectorComponents) {
    super()
    const heartbeatMs = positiveMs(
      'heartbeatIntervalMs',
      init.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
    )
    this.#config = { ...swimTimings(heartbeatMs), ...init.swim }
    this.#staleRecordMs = init.staleRecordMs
    this.#mismatchFrames = init.digestMismatchFrames ?? 2
    this.#components = components
    this.#log = components.log
  }

  get isStarted(): boolean {
    return this.#swim !== undefined
  }

  start(): void {
    if (this.#swim !== undefined) return
    const { replica, transport, nodeId, signer } = this.#components
    this.#swim = new Swim(
      nodeId,
      this.#config,
      {
        now: Date.now,
        random: Math.random,
        send: this.#send,
        sign: (incarnation) => signer.signAlive(incarnation),
        verify: this.#verify,
        onChange: this.#onMemberChange,
        onProbeAnswered: this.#onProbeAnswered,
      },
      // Our start time: a restart outranks whatever was said about the run before.
      Date.now(),
    )
    transport.on('frame', this.#onFrame)
    replica.on('change', this.#onChange)
    for (const node of replica.nodes()) this.#learn(node)
    const tickMs = Math.min(50, (this.#config.probeIntervalMs ?? 500) / 5)
    this.#timer = setInterval(() => this.#swim?.tick(), tickMs)
  }

  stop(): void {
    if (this.#swim === undefined) return
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#components.transport.off('frame', this.#onFrame)
    this.#components.replica.off('change', this.#onChange)
    this.#swim = undefined
    for (const map of [this.#heard, this.#status, this.#inSync, this.#mismatches, this.#indirectOnly])
      map.clear()
  }

  /** Whether `nodeId` is a SWIM member here (its record says it speaks SWIM). */
  has(nodeId: string): boolean {
    return this.#status.has(nodeId)
  }

  status(nodeId: string): LivenessStatus | undefined {
    if (nodeId === this.#components.nodeId) return 'alive'
    return this.#status.get(nodeId)
  }

  /** When we last heard from it directly, or else its record was written, local ms. */
  lastSeen(nodeId: string): number | undefined {
    if (nodeId === this.#components.nodeId) return Date.now()
    if (!this.#status.has(nodeId)) return undefined
    const written = Date.parse(this.#components.replica.get('node', nodeId)?.lastHeartbeat ?? '')
    const heard = this.#heard.get(nodeId) ?? Number.NEGATIVE_INFINITY
    return Math.max(heard, Number.isNaN(written) ? Number.NEGATIVE_INFINITY : Math.min(written, Date.now()))
  }

  inSync(nodeId: string): boolean | undefined {
    if (nodeId === this.#components.nodeId) return true
    return this.#inSync.get(nodeId)
  }

  /** Our incarnation (it starts at our start time and rises with each refutation). */
  get incarnation(): number {
    return this.#swim?.incarnation ?? 0
  }

  /** Lifeguard's local health multiplier: 0 while this node's probes get answers. */
  get localHealth(): number {
    return this.#swim?.localHealth ?? 0
  }

  snapshot(): LivenessEntry[] {
    return [...this.#status].map(([nodeId, status]) => ({
      nodeId,
      status,
      lastSeenMs: this.lastSeen(nodeId) ?? Number.NEGATIVE_INFINITY,
      lastBeatMs: this.#heard.get(nodeId),
      peerId: peerIdOf(this.#components.replica.get('node', nodeId)),
    }))
  }

  /** Judges one frame from peer `from` (proven by its connection). Public for tests. */
  receive(from: string, data: Uint8Array): SwimFrameOutcome {
    const swim = this.#swim
    if (swim === undefined) return 'ignored-not-member'
    let frame: ReturnType<typeof decodeSwimFrame>
    try {
      frame = decodeSwimFrame(data)
    } catch (err) {
      if (!(err instanceof SwimFrameError)) throw err
      this.#log.debug({ from, reason: err.message }, 'SWIM frame rejected')
      return this.#count('rejected-malformed')
    }
    const { d, ...message } = frame
    // Any connected peer's digest counts (the connection proves the peer): an agent that has just
    // joined holds no records yet, and learns them by the sync that a differing digest starts.
    const inSync = this.#compareDigest(d, from, frame.from)
    const record = this.#components.replica.get('node', frame.from)
    if (peerIdOf(record) !== from) return this.#count('ignored-peer-mismatch')
    if (!this.#status.has(frame.from)) return this.#count('ignored-not-member')
    this.#heard.set(frame.from, Date.now())
    if (this.#inSync.get(frame.from) !== inSync) {
      this.#inSync.set(frame.from, inSync)
      emitSafely(this, this.#log, 'SWIM detector', 'node:sync', [{ nodeId: frame.from, inSync }])
    }
    swim.receive(frame.from, message as Message)
    return this.#count('accepted')
  }

  #count(outcome: SwimFrameOutcome): SwimFrameOutcome {
    this.counts[outcome]++
    return outcome
  }

  readonly #onFrame = (from: string, data: Uint8Array): void => {
    this.receive(from, data)
  }

  readonly #send = (to: string, message: Message): void => {
    const record = this.#components.replica.get('node', to)
    const peerId = peerIdOf(record)
    if (peerId === undefined) return
    const frame = encodeSwimFrame({ ...message, d: digestPrefix(this.#components.replica.digest()) })
    this.sent.frames++
    this.sent.bytes += frame.length
    this.sent.largest = Math.max(this.sent.largest, frame.length)
    try {
      this.#components.transport.send(peerId, frame, record!, message)
    } catch (err) {
      this.#log.error({ err, to }, 'cannot send a SWIM frame')
    }
  }

  readonly #verify = (node: string, incarnation: number, signature: string | undefined): boolean => {
    const record = this.#components.replica.get('node', node)
    return record !== undefined && checkAliveSignature(signature, node, incarnation, record) === 'valid'
  }

  /**
   * Probes of a member answered only through others, `HALF_OPEN_PROBES` times in a row: the member is
   * up but our connection to it carries nothing (half open after a partition); it is closed, and the
   * next frame dials afresh.
   */
  readonly #onProbeAnswered = (node: string, direct: boolean): void => {
    if (direct) {
      this.#indirectOnly.delete(node)
      return
    }
    const streak = (this.#indirectOnly.get(node) ?? 0) + 1
    this.#indirectOnly.set(node, streak)
    const peerId = peerIdOf(this.#components.replica.get('node', node))
    if (streak < HALF_OPEN_PROBES || peerId === undefined) return
    this.#indirectOnly.delete(node)
    this.#components.transport.reset(peerId, `${node} answered ${streak} probes through others only`)
  }

  readonly #onMemberChange = (node: string, state: MemberState): void => {
    this.#setStatus(node, STATUS[state])
  }

  #setStatus(nodeId: string, status: LivenessStatus): void {
    const previous = this.#status.get(nodeId)
    if (previous === status) return
    this.#status.set(nodeId, status)
    this.#log.debug({ nodeId, status, previous }, 'node liveness changed')
    const lastSeenMs = this.lastSeen(nodeId) ?? Number.NEGATIVE_INFINITY
    emitSafely(this, this.#log, 'SWIM detector', `node:${status}`, [{ nodeId, lastSeenMs, previous }])
  }

  /** A member from its record: alive (fresh record) or held dead (stale) until it speaks. */
  #learn(node: Node): void {
    if (node.id === this.#components.nodeId || !speaksSwim(node) || this.#status.has(node.id)) return
    const staleMs = this.#staleRecordMs ?? 3 * recordRefreshFor(this.#components.replica.counts().nodes)
    const stale = !(Date.now() - Date.parse(node.lastHeartbeat) <= staleMs)
    this.#swim!.add(node.id, stale ? 'dead' : 'alive')
    this.#setStatus(node.id, stale ? 'unreachable' : 'alive')
  }

  #forget(nodeId: string): void {
    if (!this.#status.delete(nodeId)) return
    this.#swim!.remove(nodeId)
    this.#heard.delete(nodeId)
    this.#inSync.delete(nodeId)
    this.#indirectOnly.delete(nodeId)
  }

  readonly #onChange = (changes: Change[]): void => {
    for (const change of changes) {
      if (change.kind !== 'node' || change.id === this.#components.nodeId) continue
      const node = change.value as Node | null
      // Deleted (admin delete, reaped), or rewritten by a node of the previous release: not ours.
      if (node === null || !speaksSwim(node)) this.#forget(change.id)
      else this.#learn(node)
    }
  }

  /** Whether a peer's digest (`nodeId`: the id it claims, for logs) is ours; emits `digest:mismatch` every `mismatchFrames` frames that differ. */
  #compareDigest(digest: string, peerId: string, nodeId: string): boolean {
    const inSync = digest === digestPrefix(this.#components.replica.digest())
    if (inSync) {
      this.#mismatches.delete(peerId)
      return true
    }
    // Bounded: peers are connections, but a peer churning identities must not grow it for ever.
    if (this.#mismatches.size >= MAX_TRACKED_PEERS) this.#mismatches.clear()
    const streak = (this.#mismatches.get(peerId) ?? 0) + 1
    this.#mismatches.set(peerId, streak)
    // Every `mismatchFrames` frames while it lasts: a failing sync is retried, not on every frame.
    if (streak % this.#mismatchFrames === 0)
      emitSafely(this, this.#log, 'SWIM detector', 'digest:mismatch', [{ peerId, nodeId }])
    return false
  }
}

/** The peer id a node record names, if it names one. */
export function peerIdOf(record: Node | undefined): string | undefined {
  return typeof record?.peerId === 'string' ? record.peerId : undefined
}
