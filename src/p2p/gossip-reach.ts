import { TopicValidatorResult } from '@libp2p/interface'
import { CHANGES_TOPIC, REACH_TOPIC } from '../model/wire.ts'
import type { Logger } from '../support/logger.ts'
import type { Startable } from '../support/startable.ts'
import type { RegistryLibp2p } from './libp2p-node.ts'

export interface GossipReachInit {
  /** How often the agent checks whether it still hears every live node directly, ms. @default 1000 */
  checkIntervalMs?: number
  /** How long it must have been connected to every live node before it says so, ms. @default 2 × checkIntervalMs */
  settleMs?: number
}

export interface GossipReachComponents {
  libp2p: RegistryLibp2p
  /** Peer ids of the nodes that may publish: every node not known unreachable, this one excepted. */
  livePeers: () => Iterable<string>
  log: Logger
}

const rejectEvery = (): TopicValidatorResult => TopicValidatorResult.Reject

/**
 * Says to its peers whether this agent hears every publisher directly, so that they stop forwarding
 * changes to it.
 *
 * Publishers flood each message to every peer they are connected to (`libp2p-node.ts`). An agent
 * connected to every live node, on the changes topic, therefore gets every message first-hand, and what
 * mesh peers forward to it is a duplicate: in a full mesh of ten, four of every five copies received.
 * Such an agent subscribes to REACH_TOPIC; its peers leave the topic's subscribers out when they
 * forward (`libp2p-node.ts`), and it stays in their mesh, so it still forwards to the nodes that need
 * it. An agent that misses some live node unsubscribes and is forwarded to again, so the publishers it
 * lacks reach it through its peers. Discovery keeps clusters of up to 16 nodes a full mesh; beyond,
 * few agents are connected to all, and gossip is as it was. Agents of earlier releases ignore the
 * topic (it is not in their `allowedTopics`) and keep forwarding to everyone: more copies, never fewer.
 */
export class GossipReach implements Startable {
  readonly #components: GossipReachComponents
  readonly #checkIntervalMs: number
  readonly #settleMs: number
  #timer: NodeJS.Timeout | undefined
  #checkSoon: NodeJS.Immediate | undefined
  #hearsAll = false
  #heardAllSince: number | undefined
  #started = false

  get isStarted(): boolean {
    return this.#started
  }

  /** Whether this agent is subscribed to REACH_TOPIC: connected, on the changes topic, to every live node. */
  get hearsAll(): boolean {
    return this.#hearsAll
  }

  constructor(init: GossipReachInit, components: GossipReachComponents) {
    this.#components = components
    this.#checkIntervalMs = init.checkIntervalMs ?? 1000
    this.#settleMs = init.settleMs ?? 2 * this.#checkIntervalMs
  }

  start(): void {
    if (this.#started) return
    this.#started = true
    const { libp2p } = this.#components
    // The topic carries no messages: one is invalid, and counts against its sender's score.
    libp2p.services.pubsub.topicValidators.set(REACH_TOPIC, rejectEvery)
    // Losing a peer is acted on at once (it should be forwarded to again before the next message);
    // gaining one waits for the timer, and a node learned from a record for the next check as well.
    libp2p.services.pubsub.addEventListener('subscription-change', this.#scheduleCheck)
    libp2p.addEventListener('peer:disconnect', this.#scheduleCheck)
    this.#timer = setInterval(this.#check, this.#checkIntervalMs)
    this.#timer.unref()
  }

  stop(): void {
    if (!this.#started) return
    this.#started = false
    const { libp2p } = this.#components
    libp2p.services.pubsub.removeEventListener('subscription-change', this.#scheduleCheck)
    libp2p.removeEventListener('peer:disconnect', this.#scheduleCheck)
    libp2p.services.pubsub.topicValidators.delete(REACH_TOPIC)
    clearInterval(this.#timer)
    this.#timer = undefined
    if (this.#checkSoon) clearImmediate(this.#checkSoon)
    this.#checkSoon = undefined
    this.#heardAllSince = undefined
    this.#set(false)
  }

  readonly #scheduleCheck = (): void => {
    this.#checkSoon ??= setImmediate(() => {
      this.#checkSoon = undefined
      this.#check()
    })
  }

  readonly #check = (): void => {
    if (!this.#started) return
    const { pubsub } = this.#components.libp2p.services
    const heard = new Set(pubsub.getSubscribers(CHANGES_TOPIC).map(String))
    let missed: string | undefined
    for (const peer of this.#components.livePeers()) {
      if (!heard.has(peer)) {
        missed = peer
        break
      }
    }
    if (missed !== undefined) {
      this.#heardAllSince = undefined
      this.#set(false, missed)
      return
    }
    // Connections come and go in bursts (a simultaneous dial closes one of two, a restart reconnects):
    // the agent says it hears all only once it has for `settleMs`, and stops at once.
    const now = performance.now()
    this.#heardAllSince ??= now
    if (now - this.#heardAllSince >= this.#settleMs) this.#set(true)
  }

  #set(hearsAll: boolean, missed?: string): void {
    if (hearsAll === this.#hearsAll) return
    this.#hearsAll = hearsAll
    const { pubsub } = this.#components.libp2p.services
    if (hearsAll) pubsub.subscribe(REACH_TOPIC)
    else if (pubsub.getTopics().includes(REACH_TOPIC)) pubsub.unsubscribe(REACH_TOPIC)
    this.#components.log.debug(
      { self: this.#components.libp2p.peerId.toString(), hearsAll, missed },
      hearsAll
        ? 'gossip: connected to every live node; peers stop forwarding to it'
        : 'gossip: not connected to every live node; peers forward to it again',
    )
  }
}
