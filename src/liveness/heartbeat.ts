import { EventEmitter } from 'node:events'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Node } from '../model/index.ts'
import type { Change } from '../replica/change.ts'
import type { ChangeSource, Replica } from '../replica/replica.ts'
import { emitSafely } from '../support/emit-safely.ts'
import { positiveMs } from '../support/init-error.ts'
import { jittered } from '../support/jitter.ts'
import type { Logger } from '../support/logger.ts'
import type { Startable } from '../support/startable.ts'
import { type Beat, digestPrefix, encodeBeat } from './beat.ts'
import { buildNodeRecord, identityFingerprint, type NodeIdentity, type NodeSelf } from './node-record.ts'
import { ResourceSampler, type ResourceSource } from './usage.ts'

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 2000
export const DEFAULT_RECORD_REFRESH_MS = 60_000

/**
 * The cluster as a whole refreshes at most one record per this many ms: a refresh is gossiped to every
 * node, so a fixed interval per node would cost each node more the larger the cluster.
 */
export const RECORD_REFRESH_SPACING_MS = 6000

/** How often a node of a cluster of `nodes` rewrites its unchanged record: `recordRefreshMs`, or longer in a large cluster. */
export function recordRefreshFor(nodes: number, recordRefreshMs = DEFAULT_RECORD_REFRESH_MS): number {
  return Math.max(recordRefreshMs, nodes * RECORD_REFRESH_SPACING_MS)
}

export interface HeartbeatInit {
  /**
   * Time between two liveness beats, ms (each ±10%). The failure detector's thresholds are multiples
   * of it, so it sets how fast a dead node is noticed; the agent passes `OB_HEARTBEAT_MS`.
   * @default 2000
   */
  heartbeatIntervalMs?: number
  /**
   * How often the whole node record is rewritten even when nothing but `lastHeartbeat` and `usage`
   * changed, ms (±10%); in a cluster of more than 10 nodes, `RECORD_REFRESH_SPACING_MS` per node
   * (`recordRefreshFor`). A record write is gossiped as a change to every node and stored in every
   * replica, so it is kept rare; liveness comes from SWIM, not from the record.
   * @default 60000
   */
  recordRefreshMs?: number
  /** Directory whose file system is reported as disk usage (the agent's data dir). @default process.cwd() */
  dataDir?: string
}

export interface HeartbeatLibp2p {
  readonly peerId: PeerId
  getMultiaddrs(): Multiaddr[]
}

/** Sends a beat to every directly connected peer (`FrameChannel`); returns how many it went to. */
export interface BeatSink {
  broadcast(data: Uint8Array): number
}

export interface HeartbeatComponents {
  /** Its peer id and multiaddrs go into the record. */
  libp2p: HeartbeatLibp2p
  /** Where beats go. */
  beats: BeatSink
  /**
   * The newest beat time of each node this node believes alive, with its signature, relayed in each
   * beat (`FailureDetector.relays`). @default none
   */
  relay?: () => Pick<Beat, 'h' | 'r'>
  /** Signs our beat time (`NodeSigner.signBeat`), carried as `Beat.g`. @default beats unsigned */
  signBeat?: (beatT: number) => string
  /** Where the record is written (the gossip unit publishes it) and whose digest the beats carry. */
  replica: Pick<Replica, 'put' | 'digest' | 'on' | 'off' | 'counts'>
  log: Logger
  /** This node's id, URL, zone and region; asked on every beat. */
  self: () => NodeSelf
  /** CPU, memory, disk and GPU figures. @default a `ResourceSampler` of `dataDir` */
  resources?: ResourceSource
}

/**
 * Why the node record was written. Doubles as a log field and a metric label.
 * - `start`: the unit started.
 * - `changed`: url, zone, region, peer id, multiaddrs or the GPU list changed.
 * - `refresh`: `recordRefreshMs` passed since the last write.
 * - `reassert`: our record was deleted (admin delete) or written by someone else (a second agent with
 *   our node id?); only this node writes its record (docs/replication.md, Node records), so it writes it again.
 */
export type RecordReason = 'start' | 'changed' | 'refresh' | 'reassert'

export interface HeartbeatEvents {
  /** A beat was sent to every connected peer (possibly none). */
  beat: [beat: Beat, bytes: number]
  /** The node record was written to the replica and is durable. */
  record: [node: Node, reason: RecordReason]
}

/**
 * This node's heartbeat. Two outputs at two speeds:
 * - every `heartbeatIntervalMs`, a small beat (`beat.ts`) to every directly connected peer that keeps
 *   this node — and, through the relayed ages, the nodes it hears from — alive in every failure
 *   detector, and carries a digest prefix for anti-entropy;
 * - the node record in the replica (`replica.put`), written on start, as soon as a slow-changing
 *   field changes, every `recordRefreshMs`, and right after an admin delete of it.
 *
 * The record check runs on the beat timer (one at a time; a beat is never delayed by it).
 */
export class Heartbeat extends EventEmitter<HeartbeatEvents> implements Startable {
  readonly heartbeatIntervalMs: number
  readonly recordRefreshMs: number
  readonly #components: HeartbeatComponents
  readonly #resources: ResourceSource
  readonly #log: Logger
  #running = false
  /** Bumped by every start and stop, so a start overtaken by a stop (and a new start) backs off. */
  #generation = 0
  #starting: Promise<void> | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  #seq = 0
  /** The record check or write in flight. */
  #work: Promise<void> | undefined
  /** Fingerprint of the identity last written; undefined before the first write. */
  #written: string | undefined
  #writtenAt = 0
  /** This refresh's share of the interval, 0.9-1.1 (`jittered`), so nodes started together spread out. */
  #refreshJitter = 1
  #reassertPending = false
  #lastReassertAt = Number.NEGATIVE_INFINITY

  constructor(init: HeartbeatInit, components: HeartbeatComponents) {
    super()
    this.heartbeatIntervalMs = positiveMs(
      'heartbeatIntervalMs',
      init.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
    )
    this.recordRefreshMs = positiveMs('recordRefreshMs', init.recordRefreshMs ?? DEFAULT_RECORD_REFRESH_MS)
    this.#components = components
    this.#log = components.log
    this.#resources =
      components.resources ??
      new ResourceSampler(init.dataDir === undefined ? {} : { dataDir: init.dataDir }, {
        log: components.log,
      })
  }

  get isStarted(): boolean {
    return this.#running
  }

  /**
   * Writes the node record, publishes the first beat and starts the timer. Resolves once the record is
   * durable; rejects (and stays stopped) when it cannot be written, e.g. `ValidationError` for a bad
   * URL from `self()`. Idempotent.
   */
  start(): Promise<void> {
    this.#starting ??= this.#start()
    return this.#starting
  }

  /** Stops the timer and the replica listener, and waits for a record write in flight. */
  async stop(): Promise<void> {
    const starting = this.#starting
    this.#generation++
    this.#running = false
    this.#starting = undefined
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#components.replica.off('change', this.#onChange)
    await starting?.catch(() => undefined)
    await this.#work?.catch(() => undefined)
    this.#written = undefined
    this.#reassertPending = false
    this.#lastReassertAt = Number.NEGATIVE_INFINITY
  }

  async #start(): Promise<void> {
    const generation = ++this.#generation
    this.#running = true
    this.#seq = 0
    this.#components.replica.on('change', this.#onChange)
    try {
      await this.#recordStep('start')
    } catch (err) {
      if (generation === this.#generation) {
        this.#running = false
        this.#starting = undefined
        this.#components.replica.off('change', this.#onChange)
      }
      throw err
    }
    if (generation !== this.#generation || !this.#running) return
    this.#publishBeat()
    this.#schedule()
  }

  #schedule(): void {
    this.#timer = setTimeout(this.#tick, jittered(this.heartbeatIntervalMs))
  }

  #tick = (): void => {
    this.#timer = undefined
    if (!this.#running) return
    this.#publishBeat()
    if (this.#work === undefined) this.#recordStep().catch(this.#logWriteError)
    this.#schedule()
  }

  #publishBeat(): void {
    const { beats, replica, self, relay, signBeat } = this.#components
    const t = Date.now()
    const beat: Beat = {
      n: self().id,
      t,
      s: this.#seq++,
      d: digestPrefix(replica.digest()),
      ...(signBeat === undefined ? {} : { g: signBeat(t) }),
      ...relay?.(),
    }
    const bytes = encodeBeat(beat)
    try {
      beats.broadcast(bytes)
    } catch (err) {
      this.#log.error({ err }, 'cannot send a beat')
    }
    this.#notify('beat', beat, bytes.length)
  }

  /** Emits without letting a listener's exception escape into the timer or the record write. */
  #notify<K extends keyof HeartbeatEvents>(event: K, ...args: HeartbeatEvents[K]): void {
    emitSafely(this, this.#log, 'heartbeat', event, args)
  }

  #logWriteError = (err: unknown): void => {
    this.#log.error({ err }, 'cannot write our node record')
  }

  /** Runs one record check (and write, when due), one at a time. */
  #recordStep(forced?: RecordReason): Promise<void> {
    const work = this.#checkRecord(forced).finally(() => {
      if (this.#work === work) this.#work = undefined
      this.#reassertSoon()
    })
    this.#work = work
    return work
  }

  async #checkRecord(forced: RecordReason | undefined): Promise<void> {
    const identity = await this.#identity()
    if (!this.#running) return
    const fingerprint = identityFingerprint(identity)
    let reason = forced
    if (reason === undefined && this.#reassertPending) reason = 'reassert'
    if (reason === undefined && fingerprint !== this.#written) reason = 'changed'
    // Due by the cluster's size now: a node that started alone learns of the others later.
    const refreshMs =
      this.#refreshJitter * recordRefreshFor(this.#components.replica.counts().nodes, this.recordRefreshMs)
    if (reason === undefined && Date.now() - this.#writtenAt >= refreshMs) reason = 'refresh'
    if (reason === undefined) return
    if (reason === 'reassert') this.#lastReassertAt = Date.now()
    this.#reassertPending = false
    try {
      const usage = await this.#resources.usage()
      const record = buildNodeRecord(identity, usage, Date.now())
      await this.#components.replica.put('node', record)
      this.#written = fingerprint
      this.#writtenAt = Date.now()
      this.#refreshJitter = jittered(1000) / 1000
      this.#log.debug({ reason, nodeId: record.id }, 'node record written')
      this.#notify('record', record, reason)
    } catch (err) {
      if (reason === 'reassert') this.#reassertPending = true
      throw err
    }
  }

  async #identity(): Promise<NodeIdentity> {
    const { libp2p, self } = this.#components
    return {
      self: self(),
      peerId: libp2p.peerId.toString(),
      multiaddrs: libp2p
        .getMultiaddrs()
        .map((ma) => ma.toString())
        .sort(),
      gpus: await this.#resources.gpus(),
    }
  }

  /** Watches the replica for a delete of our record, or a write of it that is not ours. */
  #onChange = (changes: Change[], source: ChangeSource): void => {
    const id = this.#components.self().id
    for (const change of changes) {
      if (change.kind !== 'node' || change.id !== id) continue
      if (change.value === null) {
        this.#log.info(
          { nodeId: id, source, version: change.version },
          'our node record was deleted; re-asserting it',
        )
      } else if (source !== 'local') {
        this.#log.warn(
          { nodeId: id, source, version: change.version },
          'our node record was written by another agent (is OB_NODE_ID used twice?); re-asserting it',
        )
      } else {
        continue
      }
      this.#reassertPending = true
    }
    this.#reassertSoon()
  }

  /**
   * Re-asserts the record now when one is pending and the last re-assert is at least a heartbeat
   * interval old; otherwise the next beat does it. The limit stops two agents sharing a node id from
   * overwriting each other as fast as gossip goes.
   */
  #reassertSoon(): void {
    if (!this.#running || !this.#reassertPending || this.#work !== undefined) return
    if (Date.now() - this.#lastReassertAt < this.heartbeatIntervalMs) return
    this.#recordStep().catch(this.#logWriteError)
  }
}

/** `heartbeat(init)(components)`: the factory form of `new Heartbeat(init, components)`. */
export function heartbeat(init: HeartbeatInit = {}): (components: HeartbeatComponents) => Heartbeat {
  return (components) => new Heartbeat(init, components)
}
