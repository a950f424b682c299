/**
 * A simulated network for the SWIM state machine (src/liveness/swim): one clock, messages delivered
 * after a random delay or lost, crashed nodes silent. The tests and the simulator
 * (scripts/simulate-swim.ts) run the agent's own state machine on it. Deterministic per seed.
 */
import { type MemberState, type Message, Swim, type SwimConfig } from '../../src/liveness/swim/swim.ts'
import { seeded } from './random.ts'

/** A stand-in for the node's signature: verifiable, and only its owner (this simulation) makes it. */
export const signatureOf = (node: string, incarnation: number) => `signed:${node}:${incarnation}`

export class SimNet {
  now = 0
  readonly nodes = new Map<string, Swim>()
  readonly crashed = new Set<string>()
  /** Nodes whose messages, both ways, are lost. */
  readonly cutOff = new Set<string>()
  /** Nodes that lose this share of what they send and of what is sent to them (a bad host). */
  readonly lossyHosts = new Map<string, number>()
  readonly changes: Array<{ at: number; by: string; node: string; state: MemberState }> = []
  readonly random: () => number
  #inFlight: Array<{ at: number; from: string; to: string; message: Message }> = []
  sent = 0
  /** Bytes sent, as JSON (counted when `countBytes` is set: it costs a stringify per message). */
  bytes = 0
  countBytes = false
  /** Delivery takes 1 ms plus up to this. */
  maxDelayMs = 4
  maxUpdates = 0

  readonly loss: number
  readonly config: Partial<SwimConfig>

  constructor(seed: number, loss = 0, config: Partial<SwimConfig> = {}) {
    this.random = seeded(seed)
    this.loss = loss
    this.config = config
  }

  add(id: string): Swim {
    const swim = new Swim(id, this.config, {
      now: () => this.now,
      random: this.random,
      send: (to, message) => {
        this.sent++
        if (this.countBytes) this.bytes += JSON.stringify(message).length
        this.maxUpdates = Math.max(this.maxUpdates, message.u.length)
        if (this.random() < this.loss || this.cutOff.has(id) || this.cutOff.has(to)) return
        const hostLoss = (this.lossyHosts.get(id) ?? 0) + (this.lossyHosts.get(to) ?? 0)
        if (hostLoss > 0 && this.random() < hostLoss) return
        this.#inFlight.push({
          at: this.now + 1 + this.random() * this.maxDelayMs,
          from: id,
          to,
          message: structuredClone(message),
        })
      },
      sign: (incarnation) => signatureOf(id, incarnation),
      verify: (node, incarnation, signature) => signature === signatureOf(node, incarnation),
      onChange: (node, state) => this.changes.push({ at: this.now, by: id, node, state }),
    })
    this.nodes.set(id, swim)
    return swim
  }

  /** Every node knows every other from the start (as from node records). */
  static cluster(n: number, seed: number, loss = 0, config: Partial<SwimConfig> = {}): SimNet {
    const net = new SimNet(seed, loss, config)
    const ids = Array.from({ length: n }, (_, i) => `n${i}`)
    for (const id of ids) net.add(id)
    for (const swim of net.nodes.values()) for (const id of ids) swim.add(id)
    return net
  }

  run(ms: number): void {
    const end = this.now + ms
    while (this.now < end) {
      this.now += 10
      const due = this.#inFlight.filter((m) => m.at <= this.now)
      this.#inFlight = this.#inFlight.filter((m) => m.at > this.now)
      for (const { from, to, message } of due) {
        if (!this.crashed.has(to)) this.nodes.get(to)?.receive(from, message)
      }
      for (const [id, swim] of this.nodes) if (!this.crashed.has(id)) swim.tick()
    }
  }

  /** The first time each other live node called `node` dead. */
  deadAt(node: string): number[] {
    return [...this.nodes.keys()]
      .filter((id) => id !== node && !this.crashed.has(id))
      .map(
        (id) =>
          this.changes.find((c) => c.by === id && c.node === node && c.state === 'dead')?.at ?? Number.NaN,
      )
  }
}
