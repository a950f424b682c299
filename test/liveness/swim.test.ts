/**
 * The SWIM state machine (src/liveness/swim) on a simulated network: a shared clock, messages delivered
 * after a random delay or lost, crashed nodes silent. Deterministic per seed (SWIM_SEED=n replays).
 */
import { describe, expect, it } from 'vitest'
import { type MemberState, type Message, Swim, type SwimConfig } from '../../src/liveness/swim/swim.ts'
import { seeded } from '../support/random.ts'

/** A stand-in for the node's signature: verifiable, and only its owner (this simulation) makes it. */
const signatureOf = (node: string, incarnation: number) => `signed:${node}:${incarnation}`

class SimNet {
  now = 0
  readonly nodes = new Map<string, Swim>()
  readonly crashed = new Set<string>()
  /** Nodes whose messages, both ways, are lost. */
  readonly cutOff = new Set<string>()
  readonly changes: Array<{ at: number; by: string; node: string; state: MemberState }> = []
  readonly random: () => number
  #inFlight: Array<{ at: number; from: string; to: string; message: Message }> = []
  sent = 0
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
        this.maxUpdates = Math.max(this.maxUpdates, message.u.length)
        if (this.random() < this.loss || this.cutOff.has(id) || this.cutOff.has(to)) return
        this.#inFlight.push({
          at: this.now + 1 + this.random() * 4,
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

const seed = Number(process.env.SWIM_SEED ?? Math.floor(Math.random() * 2 ** 32))

describe(`SWIM state machine (SWIM_SEED=${seed})`, () => {
  it('keeps every member of a healthy cluster alive, with a bounded message size', () => {
    const net = SimNet.cluster(30, seed)
    net.run(120_000)
    expect(net.changes.filter((c) => c.state !== 'alive')).toEqual([])
    expect(net.maxUpdates).toBeLessThanOrEqual(8)
    // One probe per node per period, and its ack: the cost per node does not grow with the cluster.
    const perNodePerSecond = net.sent / 30 / 120
    expect(perNodePerSecond).toBeLessThan(6)
  })

  it('finds a crashed node dead on every other node within seconds', () => {
    const net = SimNet.cluster(20, seed)
    net.run(5_000)
    const crashAt = net.now
    net.crashed.add('n7')
    net.run(20_000)
    const detected = net.deadAt('n7').map((at) => at - crashAt)
    expect(detected.every((ms) => Number.isFinite(ms))).toBe(true)
    expect(Math.max(...detected)).toBeLessThan(10_000)
    // Nobody else was accused of anything.
    expect(net.changes.filter((c) => c.node !== 'n7' && c.state !== 'alive')).toEqual([])
  })

  it('lets a node cut off for a moment refute the suspicion with a higher incarnation', () => {
    const net = SimNet.cluster(10, seed)
    net.run(3_000)
    net.cutOff.add('n3')
    // Until someone suspects it (its probe and the indirect ones fail), short of the suspicion timeout.
    for (
      let ms = 0;
      ms < 10_000 && !net.changes.some((c) => c.node === 'n3' && c.state === 'suspect');
      ms += 10
    )
      net.run(10)
    expect(net.changes.some((c) => c.node === 'n3' && c.state === 'suspect')).toBe(true)
    net.cutOff.delete('n3')
    net.run(20_000)
    expect(net.nodes.get('n3')!.incarnation).toBeGreaterThan(0)
    for (const [id, swim] of net.nodes) if (id !== 'n3') expect(swim.state('n3'), id).toBe('alive')
    expect(net.changes.filter((c) => c.node === 'n3' && c.state === 'dead')).toEqual([])
  })

  it('keeps a dead node dead: alive statements need its own signature, and old ones do not count', () => {
    const net = SimNet.cluster(8, seed)
    net.run(2_000)
    net.crashed.add('n5')
    net.run(20_000)
    const n0 = net.nodes.get('n0')!
    expect(n0.state('n5')).toBe('dead')
    // A member echoes n5's last alive (incarnation 0, properly signed) and forges a newer one.
    n0.receive('n1', {
      t: 'ping',
      seq: 1,
      from: 'n1',
      u: [{ s: 'alive', n: 'n5', i: 0, g: signatureOf('n5', 0) }],
    })
    n0.receive('n1', { t: 'ping', seq: 2, from: 'n1', u: [{ s: 'alive', n: 'n5', i: 9, g: 'forged' }] })
    expect(n0.state('n5')).toBe('dead')
    // n5 itself comes back: its own signed alive with a higher incarnation is taken.
    n0.receive('n5', {
      t: 'ping',
      seq: 3,
      from: 'n5',
      u: [{ s: 'alive', n: 'n5', i: 1, g: signatureOf('n5', 1) }],
    })
    expect(n0.state('n5')).toBe('alive')
  })

  it('flags no live node dead with 10% of messages lost', () => {
    const net = SimNet.cluster(20, seed, 0.1)
    net.run(300_000)
    // Probes fail now and then (suspicions), and every one is refuted in time.
    expect(net.changes.some((c) => c.state === 'suspect')).toBe(true)
    expect(net.changes.filter((c) => c.state === 'dead')).toEqual([])
  })
})
