import { EventEmitter } from 'node:events'
import { normaliseNodeUrl } from '../model/index.ts'
import type { Replica } from '../replica/replica.ts'
import { emitSafely } from '../support/emit-safely.ts'
import { InitError, positiveMs } from '../support/init-error.ts'
import { jittered } from '../support/jitter.ts'
import type { Logger } from '../support/logger.ts'
import type { Startable } from '../support/startable.ts'
import type { FailureDetector } from './failure-detector.ts'

/** One hour: a machine down that long is being replaced, and its services with it. */
export const DEFAULT_NODE_REAP_AFTER_MS = 60 * 60 * 1000
/** More than half of the known nodes unreachable: more likely we are cut off than they are all down. */
export const DEFAULT_SELF_PRESERVATION_RATIO = 0.5
export const DEFAULT_REAP_CHECK_MS = 1000

export interface ReaperInit {
  /** Reap a node unreachable this long, ms: its instances (orphans) and its record. 0 never. @default 1 hour */
  nodeReapAfterMs?: number
  /** Above this share of known nodes (ours included) unreachable, reap nothing. @default 0.5 */
  selfPreservationRatio?: number
  /** How often the rule is applied, ms (±10%). @default 1000 */
  checkIntervalMs?: number
}

export interface ReaperComponents {
  replica: Pick<Replica, 'nodes' | 'instances' | 'remove'>
  detector: Pick<FailureDetector, 'status' | 'lastSeen' | 'statusCounts'>
  /** Our node id: never reaped by us. */
  nodeId: string
  log: Logger
}

export interface ReaperEvents {
  /** Self-preservation began (`true`) or ended, with the share of known nodes unreachable. */
  'self-preservation': [active: boolean, unreachableRatio: number]
  /** A node unreachable for `nodeReapAfterMs` was deleted, with this many of its instances. */
  reap: [nodeId: string, instances: number]
}

/**
 * Deletes what dead nodes leave behind (DESIGN.md §7.2): the instances of a node unreachable for
 * `nodeReapAfterMs`, then its record (a node that comes back re-asserts it). Every agent applies the
 * rule, so the deletes happen even when no single agent sees everything; they are ordinary tombstoned
 * deletes, so duplicates merge.
 *
 * **Self-preservation** (Eureka's rule, made visible): an agent that finds more than
 * `selfPreservationRatio` of the known nodes unreachable assumes that it is the one cut off, and reaps
 * nothing while that lasts; `/healthz`, `/metrics` and the log say so. The owner's checks of its own
 * instances go on (`InstanceProber`), since they do not depend on the rest of the cluster.
 */
export class Reaper extends EventEmitter<ReaperEvents> implements Startable {
  readonly nodeReapAfterMs: number
  readonly selfPreservationRatio: number
  readonly checkIntervalMs: number
  readonly stats = { nodesReaped: 0, instancesReaped: 0 }
  readonly #components: ReaperComponents
  readonly #log: Logger
  #timer: ReturnType<typeof setTimeout> | undefined
  #running = false
  #preserving = false
  #unreachableRatio = 0
  #sweeping: Promise<void> | undefined

  constructor(init: ReaperInit, components: ReaperComponents) {
    super()
    const reapAfter = init.nodeReapAfterMs ?? DEFAULT_NODE_REAP_AFTER_MS
    if (!Number.isFinite(reapAfter) || reapAfter < 0) {
      throw new InitError('nodeReapAfterMs', `must be 0 (never) or more milliseconds, got ${reapAfter}`)
    }
    this.nodeReapAfterMs = reapAfter
    const ratio = init.selfPreservationRatio ?? DEFAULT_SELF_PRESERVATION_RATIO
    if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
      throw new InitError('selfPreservationRatio', `must be from 0 to 1, got ${ratio}`)
    }
    this.selfPreservationRatio = ratio
    this.checkIntervalMs = positiveMs('checkIntervalMs', init.checkIntervalMs ?? DEFAULT_REAP_CHECK_MS)
    this.#components = components
    this.#log = components.log
  }

  get isStarted(): boolean {
    return this.#running
  }

  /** Whether this agent is in self-preservation (reaping nothing). */
  get selfPreserving(): boolean {
    return this.#preserving
  }

  /** Share of known nodes, ours included, that the detector calls unreachable, as of the last sweep. */
  get unreachableRatio(): number {
    return this.#unreachableRatio
  }

  start(): void {
    if (this.#running) return
    this.#running = true
    this.#schedule()
  }

  async stop(): Promise<void> {
    this.#running = false
    clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#sweeping
  }

  /** Applies the rule once; public so tests need not wait for the timer. */
  async sweep(now = Date.now()): Promise<void> {
    const { detector, replica, nodeId } = this.#components
    const counts = detector.statusCounts()
    const known = counts.alive + counts.suspect + counts.unreachable
    this.#unreachableRatio = known === 0 ? 0 : counts.unreachable / known
    const preserving = known > 1 && this.#unreachableRatio > this.selfPreservationRatio
    if (preserving !== this.#preserving) {
      this.#preserving = preserving
      const fields = { unreachable: counts.unreachable, known, ratio: this.selfPreservationRatio }
      if (preserving) {
        this.#log.warn(
          fields,
          'self-preservation: most known nodes are unreachable; deleting nothing of other nodes',
        )
      } else {
        this.#log.info(fields, 'self-preservation over: automatic deletion resumes')
      }
      this.#notify('self-preservation', preserving, this.#unreachableRatio)
    }
    if (preserving || this.nodeReapAfterMs === 0) return
    for (const node of replica.nodes()) {
      if (node.id === nodeId || detector.status(node.id) !== 'unreachable') continue
      const silentMs = now - (detector.lastSeen(node.id) ?? Number.NEGATIVE_INFINITY)
      if (silentMs < this.nodeReapAfterMs) continue
      const url = normaliseNodeUrl(node.url)
      const orphans = replica
        .instances()
        .filter((i) => i.nodeUrl !== undefined && normaliseNodeUrl(i.nodeUrl) === url)
        .map((i) => i.id)
      let reaped = 0
      for (const id of orphans) if ((await replica.remove('instance', id)) !== undefined) reaped++
      await replica.remove('node', node.id)
      this.stats.nodesReaped++
      this.stats.instancesReaped += reaped
      this.#log.warn(
        { nodeId: node.id, url: node.url, silentMs, instances: reaped },
        'node reaped: unreachable for OB_NODE_REAP_AFTER_MS; its instances and record deleted',
      )
      this.#notify('reap', node.id, reaped)
    }
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      if (!this.#running) return
      this.#sweeping = this.sweep()
        .catch((err: unknown) => this.#log.error({ err }, 'reaper sweep failed'))
        .finally(() => {
          this.#sweeping = undefined
          if (this.#running) this.#schedule()
        })
    }, jittered(this.checkIntervalMs))
  }

  #notify<K extends keyof ReaperEvents>(event: K, ...args: ReaperEvents[K]): void {
    emitSafely(this, this.#log, 'reaper', event, args)
  }
}
