import { compareVersions, MAX_COUNTER, type Version } from './version.ts'

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
  /** Waits `ms` (for `next()`); tests hand in one that moves their fake wall clock. @default a timer */
  sleep?: (ms: number) => Promise<void>
}

/**
 * Longest `next()` waits for its reading to come within the drift bound. The attack it answers needs
 * 1 ms; a wall clock stepped back by more than this is not waited out (peers with correct clocks accept
 * our readings anyway).
 */
export const MAX_ISSUE_WAIT_MS = 50

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
  readonly #sleep: (ms: number) => Promise<void>
  #ts = 0
  #c = 0

  constructor(init: HybridClockInit) {
    this.nodeId = init.nodeId
    this.maxDriftMs = init.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS
    this.#wallClock = init.now ?? Date.now
    this.#sleep = init.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)))
  }

  /**
   * The next reading, now: above every version seen. When the counter is spent (a peer sent
   * `MAX_COUNTER`), the reading moves to the next millisecond: a counter past `MAX_COUNTER` is one
   * every peer would reject. Local writes use `next()`, which also keeps within the drift bound.
   */
  now(): Version {
    const wall = this.#wallClock()
    if (wall > this.#ts) {
      this.#ts = wall
      this.#c = 0
    } else if (this.#c < MAX_COUNTER) {
      this.#c += 1
    } else {
      this.#ts += 1
      this.#c = 0
    }
    return { ts: this.#ts, c: this.#c, node: this.nodeId }
  }

  /**
   * A version for a local write: the next reading, once it is within `maxDriftMs` of the wall clock.
   * A peer's version accepted at the very edge of the bound with its counter spent makes the next
   * reading 1 ms past it; waiting that millisecond out (never more than `MAX_ISSUE_WAIT_MS`) means a
   * peer with the same rules and clock accepts every version this clock issues, whatever versions it
   * was sent. Without the wait, one such message stopped a cluster's replication for good.
   */
  async next(): Promise<Version> {
    let waited = 0
    for (;;) {
      const ahead = this.#nextTs() - this.#wallClock() - this.maxDriftMs
      if (ahead <= 0 || waited + ahead > MAX_ISSUE_WAIT_MS) return this.now()
      await this.#sleep(ahead)
      waited += ahead
    }
  }

  /**
   * Whether a version may be merged: no more than `maxDriftMs` ahead of our wall clock. Local and
   * remote writes pass the same check.
   */
  check(version: Version): ReceiveOutcome {
    return version.ts - this.#wallClock() > this.maxDriftMs ? 'rejected-drift' : 'ok'
  }

  /**
   * Takes in a version from a peer: rejected (`check`) and leaving the clock untouched when it is too
   * far ahead; otherwise the clock moves to at least that version.
   */
  receive(remote: Version): ReceiveOutcome {
    if (this.check(remote) === 'rejected-drift') return 'rejected-drift'
    this.observe(remote)
    return 'ok'
  }

  /** The wall-clock part `now()` would give. */
  #nextTs(): number {
    const wall = this.#wallClock()
    if (wall > this.#ts) return wall
    return this.#c < MAX_COUNTER ? this.#ts : this.#ts + 1
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
