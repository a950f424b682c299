import type { Connection, PeerId, PeerInfo } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Replica } from '../replica/replica.ts'
import { jittered } from '../support/jitter.ts'
import type { Logger } from '../support/logger.ts'
import type { Startable } from '../support/startable.ts'
import type { RegistryLibp2p } from './libp2p-node.ts'
import { resolveSeed } from './seeds.ts'

export interface DiscoveryInit {
  /** Seed peers (OB_PEERS): multiaddrs with or without /p2p/<id>, or host:port. @default [] */
  seeds?: string[]
  /**
   * Connections to keep. Below it, the agent dials nodes it knows from node records (and mDNS), so the
   * cluster stays connected when a seed dies. @default 8
   */
  targetPeers?: number
  /**
   * A cluster of at most this many nodes is kept a full mesh: every agent dials every node it knows
   * that is not known down, whatever `targetPeers` says. Publishers flood to every connection, so then
   * each agent hears every publisher directly and nothing needs forwarding (`gossip-reach.ts`).
   * @default 16
   */
  fullMeshUpTo?: number
  /**
   * A node whose connection dropped is dialled again to complete a full mesh only after this long, ms
   * (below `targetPeers` at once): a node that just went away is more likely dead or cut off than
   * back, and dialling it while SWIM is still finding out slowed detection of a kill -9 by about a
   * second at 10 agents. @default 30000
   */
  redialAfterMs?: number
  /** First retry delay after a failed seed dial, ms; doubles up to `retryMaxMs`. @default 500 */
  retryMinMs?: number
  /** Longest delay between seed dial attempts, ms. @default 15000 */
  retryMaxMs?: number
  /** How often connectivity is checked and topped up from node records, ms. @default 3000 */
  checkIntervalMs?: number
  /** Time allowed for one dial, ms. @default 5000 */
  dialTimeoutMs?: number
}

export interface DiscoveryComponents {
  libp2p: RegistryLibp2p
  replica: Replica
  log: Logger
  /** Whether a node is known to be down (its liveness is `unreachable`): not worth a dial. */
  isDown?: (nodeId: string) => boolean
}

interface SeedState {
  seed: string
  peerId: string | undefined
  delayMs: number
  timer: NodeJS.Timeout | undefined
  isSelf: boolean
}

/** Dial timers stray ±20%, so agents started together do not dial in bursts. */
const DIAL_JITTER = 0.2

/**
 * Keeps the agent connected: dials every seed until it answers (and again whenever it drops), dials
 * peers found by mDNS, and tops connections up to `targetPeers` from the multiaddrs in node records.
 */
export class Discovery implements Startable {
  readonly #components: DiscoveryComponents
  readonly #seeds: SeedState[]
  readonly #targetPeers: number
  readonly #fullMeshUpTo: number
  readonly #redialAfterMs: number
  /** When each peer's last connection closed (for `redialAfterMs`); forgotten once past it. */
  readonly #droppedAt = new Map<string, number>()
  readonly #retryMinMs: number
  readonly #retryMaxMs: number
  readonly #checkIntervalMs: number
  readonly #dialTimeoutMs: number
  readonly #dialing = new Set<string>()
  #check: NodeJS.Timeout | undefined
  #abort = new AbortController()
  #started = false

  get isStarted(): boolean {
    return this.#started
  }

  constructor(init: DiscoveryInit, components: DiscoveryComponents) {
    this.#components = components
    this.#targetPeers = init.targetPeers ?? 8
    this.#fullMeshUpTo = init.fullMeshUpTo ?? 16
    this.#redialAfterMs = init.redialAfterMs ?? 30_000
    this.#retryMinMs = init.retryMinMs ?? 500
    this.#retryMaxMs = init.retryMaxMs ?? 15_000
    this.#checkIntervalMs = init.checkIntervalMs ?? 3000
    this.#dialTimeoutMs = init.dialTimeoutMs ?? 5000
    this.#seeds = (init.seeds ?? []).map((seed) => ({
      seed,
      peerId: undefined,
      delayMs: this.#retryMinMs,
      timer: undefined,
      isSelf: false,
    }))
  }

  start(): void {
    if (this.#started) return
    this.#started = true
    this.#abort = new AbortController()
    const { libp2p } = this.#components
    libp2p.addEventListener('peer:discovery', this.#onDiscovery)
    libp2p.addEventListener('peer:disconnect', this.#onDisconnect)
    for (const seed of this.#seeds) this.#scheduleSeed(seed, 0)
    this.#scheduleCheck()
  }

  stop(): void {
    if (!this.#started) return
    this.#started = false
    this.#abort.abort()
    const { libp2p } = this.#components
    libp2p.removeEventListener('peer:discovery', this.#onDiscovery)
    libp2p.removeEventListener('peer:disconnect', this.#onDisconnect)
    for (const seed of this.#seeds) {
      clearTimeout(seed.timer)
      seed.timer = undefined
    }
    clearTimeout(this.#check)
    this.#check = undefined
    this.#dialing.clear()
  }

  /** Peers we hold an open connection to. */
  connectedPeers(): string[] {
    return [...new Set(this.#components.libp2p.getConnections().map((c) => c.remotePeer.toString()))]
  }

  #scheduleSeed(seed: SeedState, delayMs: number): void {
    if (!this.#started || seed.isSelf) return
    clearTimeout(seed.timer)
    seed.timer = setTimeout(() => void this.#dialSeed(seed), delayMs)
  }

  async #dialSeed(seed: SeedState): Promise<void> {
    seed.timer = undefined
    if (!this.#started) return
    const { libp2p, log } = this.#components
    if (seed.peerId !== undefined && libp2p.getConnections(peerIdFromString(seed.peerId)).length > 0) return
    try {
      const addrs = await resolveSeed(seed.seed)
      const connection = await libp2p.dial(addrs, { signal: this.#dialSignal() })
      seed.peerId = connection.remotePeer.toString()
      seed.delayMs = this.#retryMinMs
      log.info({ seed: seed.seed, peer: seed.peerId }, 'connected to seed')
    } catch (err) {
      if (!this.#started) return
      if (isSelfDial(err)) {
        seed.isSelf = true
        log.debug({ seed: seed.seed }, 'seed is this agent itself; not dialing it')
        return
      }
      log.debug({ seed: seed.seed, err: (err as Error).message, retryInMs: seed.delayMs }, 'seed dial failed')
      this.#scheduleSeed(seed, jittered(seed.delayMs, DIAL_JITTER))
      seed.delayMs = Math.min(seed.delayMs * 2, this.#retryMaxMs)
    }
  }

  readonly #onDisconnect = (event: CustomEvent<PeerId>): void => {
    const peer = event.detail.toString()
    this.#droppedAt.set(peer, performance.now())
    for (const seed of this.#seeds) {
      if (seed.peerId === peer) {
        seed.delayMs = this.#retryMinMs
        this.#scheduleSeed(seed, jittered(this.#retryMinMs, DIAL_JITTER))
      }
    }
  }

  readonly #onDiscovery = (event: CustomEvent<PeerInfo>): void => {
    if (this.connectedPeers().length >= this.#targetPeers) return
    void this.#dialPeer(event.detail.id, event.detail.multiaddrs.map(String), 'mdns')
  }

  #scheduleCheck(): void {
    if (!this.#started) return
    this.#check = setTimeout(
      () => {
        this.#topUp()
        this.#scheduleCheck()
      },
      jittered(this.#checkIntervalMs, DIAL_JITTER),
    )
  }

  /**
   * Dials known nodes from their records until `targetPeers` connections are open, or all of them in a
   * cluster of at most `fullMeshUpTo` nodes.
   */
  #topUp(): void {
    const { libp2p, replica, isDown } = this.#components
    // First, so the map holds only the last redialAfterMs of disconnections (any peer's, strangers too).
    const now = performance.now()
    for (const [peer, at] of this.#droppedAt)
      if (now - at >= this.#redialAfterMs) this.#droppedAt.delete(peer)
    const nodes = replica.nodes()
    const connected = new Set(this.connectedPeers())
    const fullMesh = nodes.length <= this.#fullMeshUpTo
    let missing = (fullMesh ? Number.POSITIVE_INFINITY : this.#targetPeers) - connected.size
    if (missing <= 0) return
    const belowTarget = connected.size < this.#targetPeers
    const self = libp2p.peerId.toString()
    const candidates = nodes.filter((node) => {
      const peerId = node.peerId
      return (
        typeof peerId === 'string' &&
        peerId !== self &&
        !connected.has(peerId) &&
        !this.#dialing.has(peerId) &&
        !isDown?.(node.id) &&
        (belowTarget || !this.#droppedAt.has(peerId))
      )
    })
    shuffle(candidates)
    for (const node of candidates) {
      if (missing-- <= 0) break
      const addrs = Array.isArray(node.multiaddrs)
        ? node.multiaddrs.filter((a): a is string => typeof a === 'string')
        : []
      try {
        void this.#dialPeer(peerIdFromString(node.peerId as string), addrs, 'record')
      } catch {
        // A record with a malformed peer id: nothing to dial.
      }
    }
  }

  async #dialPeer(peerId: PeerId, addrs: string[], via: 'mdns' | 'record'): Promise<void> {
    const key = peerId.toString()
    if (this.#dialing.has(key) || key === this.#components.libp2p.peerId.toString()) return
    this.#dialing.add(key)
    try {
      await dialNode(this.#components.libp2p, peerId, addrs, this.#dialSignal())
      this.#components.log.debug({ peer: key, via }, 'connected to known peer')
    } catch (err) {
      this.#components.log.debug({ peer: key, via, err: (err as Error).message }, 'dial failed')
    } finally {
      this.#dialing.delete(key)
    }
  }

  #dialSignal(): AbortSignal {
    return AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#dialTimeoutMs)])
  }
}

/**
 * Dials a node at the addresses its record lists (or, with none that parse, whatever the peer store
 * knows of its peer id).
 */
export function dialNode(
  libp2p: Pick<RegistryLibp2p, 'dial'>,
  peerId: PeerId,
  addrs: readonly string[],
  signal: AbortSignal,
): Promise<Connection> {
  const key = peerId.toString()
  const targets = addrs.flatMap((a) => {
    try {
      const addr = multiaddr(a)
      return [addr.getPeerId() === null ? addr.encapsulate(`/p2p/${key}`) : addr]
    } catch {
      return []
    }
  })
  return libp2p.dial(targets.length > 0 ? targets : peerId, { signal })
}

/**
 * The multiaddrs of a node record worth dialing: strings only, and loopback ones only when the node has
 * nothing else (an agent listening on 0.0.0.0 also announces 127.0.0.1, which from another host is us).
 */
export function dialableAddrs(multiaddrs: unknown): string[] {
  const all = Array.isArray(multiaddrs) ? multiaddrs.filter((a): a is string => typeof a === 'string') : []
  const remote = all.filter((a) => !/^\/ip4\/127\.|^\/ip6\/::1\//.test(a))
  return remote.length > 0 ? remote : all
}

function isSelfDial(err: unknown): boolean {
  const text = `${(err as Error)?.name} ${(err as Error)?.message}`
  return /self/i.test(text)
}

function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[items[i], items[j]] = [items[j]!, items[i]!]
  }
}
