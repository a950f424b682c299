import { EventEmitter } from 'node:events'
import type { Replica } from '../replica/replica.ts'
import type { FailureDetectorEvents, LivenessEntry } from './detector-types.ts'
import type { FailureDetector } from './failure-detector.ts'
import type { LivenessStatus } from './liveness-state.ts'
import { type SwimDetector, speaksSwim } from './swim-detector.ts'

const FORWARDED = ['node:alive', 'node:suspect', 'node:unreachable', 'node:sync', 'digest:mismatch'] as const

/**
 * This agent's view of every node, from two detectors: SWIM (`swim-detector.ts`) for the nodes that
 * speak it, and the beat detector (`failure-detector.ts`) for nodes of the previous release during a
 * rolling upgrade. What the HTTP API, DNS, the reaper and the metrics read. Events are forwarded from
 * whichever detector owns the node.
 */
export class Liveness extends EventEmitter<FailureDetectorEvents> {
  readonly swim: SwimDetector | undefined
  readonly beats: FailureDetector
  readonly #nodeId: string
  readonly #records: Pick<Replica, 'nodes'>

  /** `records`: the node records, to tell nodes of the previous release (`beatsNeeded`). */
  constructor(
    swim: SwimDetector | undefined,
    beats: FailureDetector,
    records: Pick<Replica, 'nodes'>,
    nodeId: string,
  ) {
    super()
    this.swim = swim
    this.beats = beats
    this.#records = records
    this.#nodeId = nodeId
    for (const event of FORWARDED) {
      swim?.on(event, (change: { nodeId: string }) => this.#forward(event, change, true))
      beats.on(event, (change: { nodeId: string }) => this.#forward(event, change, false))
    }
  }

  #forward(event: (typeof FORWARDED)[number], change: { nodeId: string }, fromSwim: boolean): void {
    // A differing digest is worth a sync whoever reports it.
    if (event !== 'digest:mismatch' && this.#bySwim(change.nodeId) !== fromSwim) return
    this.emit(event, change as never)
  }

  #bySwim(nodeId: string): boolean {
    return this.swim?.has(nodeId) ?? false
  }

  status(nodeId: string): LivenessStatus | undefined {
    return this.#bySwim(nodeId) ? this.swim!.status(nodeId) : this.beats.status(nodeId)
  }

  lastSeen(nodeId: string): number | undefined {
    return this.#bySwim(nodeId) ? this.swim!.lastSeen(nodeId) : this.beats.lastSeen(nodeId)
  }

  inSync(nodeId: string): boolean | undefined {
    return this.#bySwim(nodeId) ? this.swim!.inSync(nodeId) : this.beats.inSync(nodeId)
  }

  snapshot(): LivenessEntry[] {
    const rows = this.beats.snapshot().filter((row) => !this.#bySwim(row.nodeId))
    rows.push(...(this.swim?.snapshot() ?? []))
    return rows.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0))
  }

  statusCounts(): Record<LivenessStatus, number> {
    const counts: Record<LivenessStatus, number> = { alive: 0, suspect: 0, unreachable: 0 }
    for (const row of this.snapshot()) counts[row.status]++
    return counts
  }

  /**
   * Whether beats are still needed: some node of the previous release (its record does not say it
   * speaks SWIM) is not known unreachable. Until the last one is upgraded, every node beats as before,
   * so the old nodes keep seeing everyone; after, beats stop and SWIM's cost is all there is.
   */
  beatsNeeded(): boolean {
    if (this.swim === undefined) return true
    for (const node of this.#records.nodes()) {
      if (node.id === this.#nodeId || speaksSwim(node)) continue
      if (this.beats.status(node.id) !== 'unreachable') return true
    }
    return false
  }
}
