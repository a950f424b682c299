/**
 * Penalty points per peer that fade away: each point is worth half after `halfLifeMs`. The gossip unit
 * adds points for changes it had to ignore (a peer over its rate), and gossipsub reads them as its
 * application-specific score, so a flooding member is graylisted like one that sends invalid messages.
 * Bounded: at most `maxPeers` are remembered, the ones with the least left forgotten first.
 */
export class PeerPenalties {
  readonly #halfLifeMs: number
  readonly #maxPeers: number
  readonly #now: () => number
  readonly #points = new Map<string, { value: number; at: number }>()

  constructor(init: { halfLifeMs?: number; maxPeers?: number; now?: () => number } = {}) {
    this.#halfLifeMs = init.halfLifeMs ?? 10_000
    this.#maxPeers = init.maxPeers ?? 4096
    this.#now = init.now ?? Date.now
  }

  add(peer: string, points: number): void {
    const value = this.get(peer) + points
    this.#points.delete(peer)
    this.#points.set(peer, { value, at: this.#now() })
    if (this.#points.size > this.#maxPeers) {
      const weakest = [...this.#points].sort(([, a], [, b]) => a.value - b.value)[0]![0]
      this.#points.delete(weakest)
    }
  }

  /** The points `peer` has now, faded. */
  get(peer: string): number {
    const entry = this.#points.get(peer)
    if (entry === undefined) return 0
    return entry.value * 0.5 ** ((this.#now() - entry.at) / this.#halfLifeMs)
  }
}
