/**
 * SWIM failure detection with Lifeguard's refinements, as a pure state machine (issue 15; docs to follow
 * in docs/protocols.md when it replaces the beats). No timers and no sockets: the host calls `tick` and
 * `receive`, and hands in the clock, randomness, a `send` and the signature functions, so the agent and
 * the simulator (scripts/simulate-*) run the same code.
 *
 * - Each period one member is probed (round-robin over a shuffled list): ping, then after the probe
 *   timeout ping-req through `indirectChecks` others; no ack by the end of the period makes it suspect.
 * - Membership changes ride on every message (piggybacked, at most `maxPiggyback`, each sent about
 *   `retransmitMult * log10(N+1)` times), so a node's cost per period does not grow with N.
 * - A suspected node refutes with a higher incarnation. Only a node speaks for itself: an `alive` is
 *   taken only with the node's own signature of (node, incarnation), so no echo keeps a dead node alive.
 * - Lifeguard: a local health multiplier (LHM) stretches this node's probe timeouts while it misses acks
 *   or is itself suspected (a slow node stops accusing others), and a suspicion times out sooner the more
 *   members independently confirm it.
 */

export type MemberState = 'alive' | 'suspect' | 'dead'

/** A statement about one member, carried on any message. `g`: the member's signature (alive only). */
export interface Update {
  s: MemberState
  n: string
  i: number
  /** Who suspects (suspect only): confirmations count distinct suspecters. */
  f?: string
  g?: string
}

export type Message =
  | { t: 'ping'; seq: number; from: string; u: Update[] }
  | { t: 'ack'; seq: number; from: string; u: Update[] }
  | { t: 'nack'; seq: number; from: string; u: Update[] }
  | { t: 'ping-req'; seq: number; from: string; target: string; u: Update[] }
  /** Updates only, sent while there are any (memberlist's gossip step): spreads news in O(log N) rounds. */
  | { t: 'gossip'; from: string; u: Update[] }

export interface SwimConfig {
  /** One probe per period. @default 500 */
  probeIntervalMs: number
  /** Direct ack deadline before asking others. @default 200 */
  probeTimeoutMs: number
  /** Members asked to probe indirectly. @default 3 */
  indirectChecks: number
  /** Suspicion lasts at least suspicionMult * log10(N) * probeIntervalMs. @default 1.5 (N = 50: 2.8 s median detection in simulation) */
  suspicionMult: number
  /** ... and at most this many times that, without confirmations. @default 3 */
  suspicionMaxMult: number
  /** Each update is sent about retransmitMult * log10(N+1) times. @default 8 (4 lost refutations with 10% loss in simulation) */
  retransmitMult: number
  /** Updates per message, at most. @default 8 */
  maxPiggyback: number
  /** Highest local health multiplier. @default 8 */
  maxLhm: number
  /** While updates are queued, they go to `gossipNodes` random members this often. @default 200 */
  gossipIntervalMs: number
  /** @default 3 */
  gossipNodes: number
  /**
   * A random member held dead is pinged this often, told it is dead: after a partition heals, the two
   * sides (each holding the other dead, neither probing it) meet again (Serf's reconnect). @default 5000
   */
  reconnectIntervalMs: number
}

export const DEFAULT_SWIM_CONFIG: SwimConfig = {
  probeIntervalMs: 500,
  probeTimeoutMs: 200,
  indirectChecks: 3,
  suspicionMult: 1.5,
  suspicionMaxMult: 3,
  retransmitMult: 8,
  maxPiggyback: 8,
  maxLhm: 8,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  reconnectIntervalMs: 5000,
}

export interface SwimDeps {
  now(): number
  random(): number
  send(to: string, message: Message): void
  /** This node's signature of (its id, incarnation). */
  sign(incarnation: number): string
  /** Whether `signature` is node's own for that incarnation. */
  verify(node: string, incarnation: number, signature: string | undefined): boolean
  /** A member changed state in this node's view. */
  onChange?(node: string, state: MemberState, incarnation: number): void
  /**
   * A probe of `node` was answered through others only (`direct` false), or by the node itself: a
   * transport with connections can tell a half-open one from this.
   */
  onProbeAnswered?(node: string, direct: boolean): void
}

interface Member {
  state: MemberState
  incarnation: number
  /** The member's own signature of its alive at `incarnation`, passed on to whoever has not heard it. */
  signature?: string
  /** Suspicion: when it started, and who confirmed it. */
  suspectedAt?: number
  confirmations?: Set<string>
  /** When we last pinged it while suspecting it. */
  pingedAt?: number
}

interface Queued {
  update: Update
  sent: number
}

interface Probe {
  seq: number
  target: string
  startedAt: number
  indirect: boolean
  acked: boolean
  nacks: number
}

export class Swim {
  readonly self: string
  readonly #config: SwimConfig
  readonly #deps: SwimDeps
  readonly #members = new Map<string, Member>()
  /** Member ids in an array, for O(1) random picks (swap-removed). */
  readonly #ids: string[] = []
  /** Members suspected now: what `tick` checks for timeouts. */
  readonly #suspects = new Set<string>()
  readonly #queue = new Map<string, Queued>()
  /** ping-req relays: our ping's seq → whom to ack, under which seq. */
  readonly #relays = new Map<number, { requester: string; seq: number; deadline: number }>()
  #incarnation = 0
  readonly #startIncarnation: number
  /** Our signed alive at the current incarnation (signing is the costly part). */
  #signedAlive: Update | undefined
  #lhm = 0
  #seq = 0
  /** This round's probe order, and the next place in it. */
  #order: string[] = []
  #orderAt = 0
  #probe: Probe | undefined
  #nextProbeAt = 0
  #nextGossipAt = 0
  #nextReconnectAt = 0

  /**
   * `incarnation`: where this node starts. The agent starts at its start time in ms, so a restarted
   * node's alive outranks anything said about its previous run without a round of refutation.
   */
  constructor(self: string, config: Partial<SwimConfig>, deps: SwimDeps, incarnation = 0) {
    this.self = self
    this.#config = { ...DEFAULT_SWIM_CONFIG, ...config }
    this.#deps = deps
    this.#incarnation = incarnation
    this.#startIncarnation = incarnation
    this.#queue.set(self, { update: this.#aliveSelf(), sent: 0 })
  }

  get incarnation(): number {
    return this.#incarnation
  }

  /** Lifeguard's local health multiplier: 0 is healthy. */
  get localHealth(): number {
    return this.#lhm
  }

  state(node: string): MemberState | undefined {
    return node === this.self ? 'alive' : this.#members.get(node)?.state
  }

  members(): string[] {
    return [...this.#members.keys()]
  }

  /**
   * Adds a member known from elsewhere (its node record) at incarnation 0: alive, or dead when its
   * record is too old to expect it up. A dead member is not probed; its first message to us gets it
   * told, and its refutation makes it alive.
   */
  add(node: string, state: 'alive' | 'dead' = 'alive'): void {
    if (node === this.self || this.#members.has(node)) return
    this.#addMember(node, 0)
    if (state === 'dead') {
      this.#members.get(node)!.state = 'dead'
      return
    }
    // Probed this round, at a random place among the members not yet probed (swapped there: O(1)).
    this.#order.push(node)
    const at = this.#orderAt + Math.floor(this.#deps.random() * (this.#order.length - this.#orderAt))
    ;[this.#order[at], this.#order[this.#order.length - 1]] = [node, this.#order[at]!]
  }

  /** Forgets a member (its record was deleted or reaped). */
  remove(node: string): void {
    if (!this.#members.delete(node)) return
    this.#queue.delete(node)
    this.#suspects.delete(node)
    // O(N), and rare (a record deleted or reaped): an index of positions would cost memory per member.
    const at = this.#ids.indexOf(node)
    const last = this.#ids.pop()!
    if (last !== node) this.#ids[at] = last
    // Left in #order: #nextTarget skips ids that are no longer members.
  }

  #addMember(node: string, incarnation: number, signature?: string): void {
    this.#members.set(node, { state: 'alive', incarnation, signature })
    this.#ids.push(node)
  }

  /** Up to `count` distinct random members other than `except` that pass `ok`, by sampling. */
  #sample(count: number, ok: (m: Member) => boolean, except?: string): string[] {
    const picked = new Set<string>()
    for (let tries = 0; tries < count * 4 && picked.size < count; tries++) {
      const node = this.#ids[Math.floor(this.#deps.random() * this.#ids.length)]
      if (node === undefined || node === except || picked.has(node) || !ok(this.#members.get(node)!)) continue
      picked.add(node)
    }
    return [...picked]
  }

  /** Runs what is due: a probe's next step, suspicions that expired. Call it often (every 50 ms). */
  tick(): void {
    const now = this.#deps.now()
    this.#advanceProbe(now)
    if (this.#probe === undefined && now >= this.#nextProbeAt) this.#startProbe(now)
    for (const node of this.#suspects) {
      const m = this.#members.get(node)!
      if (now - m.suspectedAt! >= this.#suspicionTimeout(m)) {
        this.#apply({ s: 'dead', n: node, i: m.incarnation })
        continue
      }
      // Ask the suspect itself once a period: if it has refuted, its ack says so (signed), even when
      // every retransmit of the refutation missed us.
      if (now - (m.pingedAt ?? Number.NEGATIVE_INFINITY) >= this.#config.probeIntervalMs) {
        m.pingedAt = now
        this.#deps.send(node, { t: 'ping', seq: ++this.#seq, from: this.self, u: this.#piggyback() })
      }
    }
    if (now >= this.#nextGossipAt) {
      this.#nextGossipAt = now + this.#config.gossipIntervalMs
      this.#gossip()
    }
    if (now >= this.#nextReconnectAt) {
      this.#nextReconnectAt = now + this.#config.reconnectIntervalMs
      this.#reconnect()
    }
    for (const [seq, relay] of this.#relays) {
      if (now < relay.deadline) continue
      this.#relays.delete(seq)
      this.#deps.send(relay.requester, { t: 'nack', seq: relay.seq, from: this.self, u: this.#piggyback() })
    }
  }

  receive(from: string, message: Message): void {
    if (from !== message.from) return
    const corrections: Update[] = []
    for (const update of message.u.slice(0, this.#config.maxPiggyback)) {
      const correction = this.#apply(update)
      if (correction !== undefined) corrections.push(correction)
    }
    // A member we hold dead is talking (it restarted, or came back from a partition after everyone
    // stopped passing its death on): it is told, so that it refutes.
    const sender = this.#members.get(from)
    if (sender?.state === 'dead') corrections.push({ s: 'dead', n: from, i: sender.incarnation })
    // The sender still accuses someone who has since refuted: it gets the refutation now, or its own
    // suspicion could run out after everyone else stopped passing the refutation on.
    if (corrections.length > 0) this.#deps.send(from, { t: 'gossip', from: this.self, u: corrections })
    switch (message.t) {
      case 'ping':
        this.#deps.send(from, { t: 'ack', seq: message.seq, from: this.self, u: this.#ackUpdates() })
        return
      case 'ping-req': {
        const seq = ++this.#seq
        this.#relays.set(seq, {
          requester: from,
          seq: message.seq,
          deadline: this.#deps.now() + this.#config.probeTimeoutMs,
        })
        this.#deps.send(message.target, { t: 'ping', seq, from: this.self, u: this.#piggyback() })
        return
      }
      case 'ack': {
        const relay = this.#relays.get(message.seq)
        if (relay !== undefined) {
          this.#relays.delete(message.seq)
          this.#deps.send(relay.requester, {
            t: 'ack',
            seq: relay.seq,
            from: this.self,
            u: this.#piggyback(),
          })
          return
        }
        if (this.#probe?.seq === message.seq && !this.#probe.acked) {
          this.#probe.acked = true
          this.#deps.onProbeAnswered?.(this.#probe.target, from === this.#probe.target)
        }
        return
      }
      case 'nack':
        if (this.#probe?.seq === message.seq) this.#probe.nacks++
        return
      case 'gossip':
        return
    }
  }

  /**
   * An ack also says, signed, which incarnation we are at (once we have refuted anything): a prober that
   * missed the refutation's gossip still learns it from us before its suspicion of us runs out.
   */
  #ackUpdates(): Update[] {
    const u = this.#piggyback()
    if (this.#incarnation === this.#startIncarnation || u.some((x) => x.n === this.self)) return u
    return [...u.slice(0, this.#config.maxPiggyback - 1), this.#aliveSelf()]
  }

  /** Queued updates to a few random members not known dead; nothing when there is no news. */
  #gossip(): void {
    if (this.#queue.size === 0) return
    for (const to of this.#sample(this.#config.gossipNodes, (m) => m.state !== 'dead')) {
      const u = this.#piggyback()
      if (u.length === 0) return
      this.#deps.send(to, { t: 'gossip', from: this.self, u })
    }
  }

  /** Tells a random member held dead that it is; if it is up, it refutes, and both sides learn it. */
  #reconnect(): void {
    const [target] = this.#sample(1, (m) => m.state === 'dead')
    if (target === undefined) return
    const dead: Update = { s: 'dead', n: target, i: this.#members.get(target)!.incarnation }
    const u = [dead, ...this.#piggyback().slice(0, this.#config.maxPiggyback - 1)]
    this.#deps.send(target, { t: 'ping', seq: ++this.#seq, from: this.self, u })
  }

  #startProbe(now: number): void {
    const target = this.#nextTarget()
    this.#nextProbeAt = now + this.#config.probeIntervalMs * (this.#lhm + 1)
    if (target === undefined) return
    const seq = ++this.#seq
    this.#probe = { seq, target, startedAt: now, indirect: false, acked: false, nacks: 0 }
    this.#deps.send(target, { t: 'ping', seq, from: this.self, u: this.#piggyback() })
  }

  #advanceProbe(now: number): void {
    const probe = this.#probe
    if (probe === undefined) return
    if (probe.acked) {
      this.#probe = undefined
      this.#lhm = Math.max(0, this.#lhm - 1)
      return
    }
    const scale = this.#lhm + 1
    if (!probe.indirect && now - probe.startedAt >= this.#config.probeTimeoutMs * scale) {
      probe.indirect = true
      for (const helper of this.#helpers(probe.target))
        this.#deps.send(helper, {
          t: 'ping-req',
          seq: probe.seq,
          from: this.self,
          target: probe.target,
          u: this.#piggyback(),
        })
      return
    }
    if (probe.indirect && now - probe.startedAt >= this.#config.probeIntervalMs * scale) {
      this.#probe = undefined
      // Lifeguard: no nacks either means our own messages are not getting through: be slower to accuse.
      if (probe.nacks === 0) this.#lhm = Math.min(this.#config.maxLhm, this.#lhm + 1)
      // Suspect it, or confirm a suspicion already heard of: our own probe failed too.
      const m = this.#members.get(probe.target)
      if (m !== undefined && m.state !== 'dead')
        this.#apply({ s: 'suspect', n: probe.target, i: m.incarnation, f: this.self })
    }
  }

  /** Members not known dead, round-robin over a list shuffled once per round. */
  #nextTarget(): string | undefined {
    for (let tries = 0; tries < 2; tries++) {
      while (this.#orderAt < this.#order.length) {
        const node = this.#order[this.#orderAt++]!
        if (this.#members.get(node)?.state !== 'dead' && this.#members.has(node)) return node
      }
      this.#order = shuffle([...this.#ids], this.#deps.random)
      this.#orderAt = 0
    }
    return undefined
  }

  #helpers(target: string): string[] {
    return this.#sample(this.#config.indirectChecks, (m) => m.state === 'alive', target)
  }

  #suspicionTimeout(m: Member): number {
    const n = this.#members.size + 1
    const min = this.#config.suspicionMult * Math.max(1, Math.log10(n)) * this.#config.probeIntervalMs
    const max = this.#config.suspicionMaxMult * min
    // Lifeguard: each independent confirmation shortens it, down to min after `expected` of them.
    const expected = Math.max(1, Math.min(this.#config.suspicionMult, n - 2))
    // The first suspecter is in the set but is not a confirmation (memberlist's rule too).
    const c = Math.min(Math.max(0, (m.confirmations?.size ?? 1) - 1), expected)
    return Math.max(min, max - ((max - min) * Math.log(c + 1)) / Math.log(expected + 1))
  }

  /**
   * Applies a statement if it is news, and passes it on. Returns the member's newer signed alive when
   * the statement accuses it at an incarnation it has already refuted.
   */
  #apply(update: Update): Update | undefined {
    if (update.n === this.self) {
      if (update.s === 'alive') return
      // Accused at our incarnation: refute with a higher one. Accused at an older one (the accuser has
      // not heard our last refutation): say the current one again, or its view never heals.
      if (update.i >= this.#incarnation) this.#refute(update.i)
      else if (!this.#queue.has(this.self)) this.#enqueue(this.#aliveSelf())
      return
    }
    const m = this.#members.get(update.n)
    if (m === undefined) {
      // An unknown node is learnt only from its own signed word.
      if (update.s !== 'alive' || !this.#deps.verify(update.n, update.i, update.g)) return
      this.#addMember(update.n, update.i, update.g)
      this.#order.push(update.n)
      this.#enqueue(update)
      this.#deps.onChange?.(update.n, 'alive', update.i)
      return
    }
    if (update.s !== 'alive' && update.i < m.incarnation && m.state === 'alive' && m.signature !== undefined)
      return { s: 'alive', n: update.n, i: m.incarnation, g: m.signature }
    switch (update.s) {
      case 'alive':
        if (update.i <= m.incarnation || !this.#deps.verify(update.n, update.i, update.g)) return
        this.#set(update.n, m, 'alive', update.i)
        m.signature = update.g
        this.#enqueue(update)
        return
      case 'suspect':
        if (update.i < m.incarnation || m.state === 'dead') return
        if (m.state === 'suspect' && update.i === m.incarnation) {
          // An independent confirmation (another member's probe failed too): counted once per member,
          // and passed on, so every member's suspicion of it runs out sooner (Lifeguard).
          if (update.f !== undefined && !m.confirmations!.has(update.f)) {
            m.confirmations!.add(update.f)
            this.#enqueue({ s: 'suspect', n: update.n, i: update.i, f: update.f })
          }
          return
        }
        this.#set(update.n, m, 'suspect', update.i)
        m.suspectedAt = this.#deps.now()
        m.confirmations = new Set(update.f === undefined ? [] : [update.f])
        this.#enqueue({ s: 'suspect', n: update.n, i: update.i, f: update.f ?? this.self })
        return
      case 'dead':
        if (update.i < m.incarnation || m.state === 'dead') return
        this.#set(update.n, m, 'dead', update.i)
        this.#enqueue({ s: 'dead', n: update.n, i: update.i })
        return
    }
  }

  #set(node: string, m: Member, state: MemberState, incarnation: number): void {
    const changed = m.state !== state
    m.state = state
    m.incarnation = incarnation
    if (state === 'suspect') this.#suspects.add(node)
    else {
      this.#suspects.delete(node)
      m.suspectedAt = undefined
      m.confirmations = undefined
      m.pingedAt = undefined
    }
    if (changed) this.#deps.onChange?.(node, state, incarnation)
  }

  /** Someone says we are suspect or dead: a higher incarnation, signed, says we are not. */
  #refute(accused: number): void {
    this.#incarnation = accused + 1
    this.#lhm = Math.min(this.#config.maxLhm, this.#lhm + 1)
    this.#enqueue(this.#aliveSelf())
  }

  #aliveSelf(): Update {
    if (this.#signedAlive?.i !== this.#incarnation)
      this.#signedAlive = {
        s: 'alive',
        n: this.self,
        i: this.#incarnation,
        g: this.#deps.sign(this.#incarnation),
      }
    return this.#signedAlive
  }

  #enqueue(update: Update): void {
    this.#queue.set(update.n, { update, sent: 0 })
  }

  /** The least-sent updates, each counted; dropped once sent enough times for the cluster's size. */
  #piggyback(): Update[] {
    const limit = Math.ceil(this.#config.retransmitMult * Math.log10(this.#members.size + 2))
    const chosen = [...this.#queue.values()]
      .sort((a, b) => a.sent - b.sent)
      .slice(0, this.#config.maxPiggyback)
    for (const q of chosen) {
      q.sent++
      if (q.sent >= limit) this.#queue.delete(q.update.n)
    }
    return chosen.map((q) => q.update)
  }
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[items[i], items[j]] = [items[j]!, items[i]!]
  }
  return items
}
