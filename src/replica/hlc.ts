import type { Version } from './version.ts'
import { compareVersions } from './version.ts'

export interface HybridClockInit {
  /** Id written into every version this clock makes. */
  nodeId: string
  /**
   * How far ahead of our wall clock a remote version may be before it is rejected, in ms. Without this
   * bound one node with a clock hours fast drags every hybrid clock with it and wins every conflict.
   * @default 5000
   */
  maxDriftMs?: number
  /** Wall-clock source; tests hand in a fake. @default Date.now */
  now?: () => number
}

export type ReceiveOutcome = 'ok' | 'rejected-drift'

export const DEFAULT_MAX_DRIFT_MS = 5_000

/**
 * Hybrid logical clock (Kulkarni et al., 2014). Readings follow wall-clock time when it moves
 * forward, never go backwards, and are always above every version this node has seen, so a local
 * write made after receiving a change always wins over it.
 */
export class HybridClock {
  readonly nodeId: string
  readonly maxDriftMs: number
  readonly #wallClock: () => number
  #ts = 0
  #c = 0

  constructor(init: HybridClockInit) {
    this.nodeId = init.nodeId
    this.maxDriftMs = init.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS
    this.#wallClock = init.now ?? Date.now
  }

  /** A new version for a local write. */
  now(): Version {
    const wall = this.#wallClock()
    if (wall > this.#ts) {
      this.#ts = wall
      this.#c = 0
    } else {
      this.#c += 1
    }
    return { ts: this.#ts, c: this.#c, node: this.nodeId }
  }

  /**
   * Takes in a version from a peer. A version more than `maxDriftMs` ahead of our wall clock is
   * rejected and leaves the clock untouched; any other moves the clock to at least that version.
   */
  receive(remote: Version): ReceiveOutcome {
    if (remote.ts - this.#wallClock() > this.maxDriftMs) return 'rejected-drift'
    this.observe(remote)
    return 'ok'
  }

  /** Raises the clock to at least `seen`, without the drift check (used for our own stored history). */
  observe(seen: Version): void {
    if (compareVersions(seen, { ts: this.#ts, c: this.#c, node: this.nodeId }) > 0) {
      this.#ts = seen.ts
      this.#c = seen.c
    }
  }

  /** The last reading, for diagnostics. */
  peek(): { ts: number; c: number } {
    return { ts: this.#ts, c: this.#c }
  }
}
