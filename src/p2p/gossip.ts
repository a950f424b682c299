import { EventEmitter } from 'node:events'
import type { Message, PeerId } from '@libp2p/interface'
import { TopicValidatorResult } from '@libp2p/interface'
import { CHANGES_TOPIC, MAX_GOSSIP_MESSAGE_BYTES } from '../model/wire.ts'
import type { Change } from '../replica/change.ts'
import { DEFAULT_MAX_DRIFT_MS } from '../replica/hlc.ts'
import type { ApplyOutcome, ChangeSource, Replica } from '../replica/replica.ts'
import { APPLY_BATCH } from '../replica/replica.ts'
import type { Logger } from '../support/logger.ts'
import type { PeerPenalties } from '../support/peer-penalties.ts'
import type { Startable } from '../support/startable.ts'
import { TokenBuckets } from '../support/token-buckets.ts'
import {
  decodeChangesMessage,
  encodeChangesMessages,
  type GossipMessageError,
  type GossipRejection,
} from './gossip-codec.ts'
import type { RegistryLibp2p } from './libp2p-node.ts'

export interface GossipInit {
  /** Largest message published or accepted, bytes. @default MAX_GOSSIP_MESSAGE_BYTES */
  maxMessageBytes?: number
  /** Largest clock lead accepted from a peer, ms (the replica's clock uses the same bound). @default DEFAULT_MAX_DRIFT_MS */
  maxDriftMs?: number
  /**
   * Changes accepted per second from one peer (what it sends and what it forwards), and at once. Past
   * it a message is ignored — neither merged nor forwarded, not held against the peer — and counted;
   * anti-entropy brings what was legitimate later.
   * @default DEFAULT_PEER_CHANGE_RATE
   */
  peerChangeRate?: { perSecond: number; burst: number }
}

/** Far above what one agent writes (HTTP writes run at a few thousand a second on a laptop). */
/** The least time between two messages of local changes (one message carries all made meanwhile). */
export const PUBLISH_GAP_MS = 25

export const DEFAULT_PEER_CHANGE_RATE = { perSecond: 5_000, burst: 10_000 }

export interface GossipComponents {
  libp2p: RegistryLibp2p
  replica: Replica
  log: Logger
  /** Where a peer over its rate gets penalty points (gossipsub graylists it on them). */
  penalties?: PeerPenalties
}

export type { GossipRejection }

export interface GossipStats {
  messagesPublished: number
  /** Payload bytes of the messages published (before gossipsub's framing and encryption). */
  bytesPublished: number
  changesPublished: number
  messagesReceived: number
  changesReceived: number
  /** Messages dropped, by reason; `rate-limited` ones were valid but came too fast (see `peerChangeRate`). */
  rejected: Record<GossipRejection, number>
  outcomes: Partial<Record<ApplyOutcome, number>>
}

export interface GossipEvents {
  rejected: [reason: GossipRejection, from: string]
}

/**
 * Spreads local writes to every replica: each local change is published on the changes topic (changes
 * made in the same event-loop turn go out as one message), and each message heard is validated —
 * size, JSON, schema, clock drift — before gossipsub forwards it or the replica merges it. A rejected
 * message is neither forwarded nor merged, and counts against its sender in gossipsub's peer score.
 */
export class Gossip extends EventEmitter<GossipEvents> implements Startable {
  readonly stats: GossipStats = {
    messagesPublished: 0,
    bytesPublished: 0,
    changesPublished: 0,
    messagesReceived: 0,
    changesReceived: 0,
    rejected: {
      oversized: 0,
      'not-json': 0,
      'bad-shape': 0,
      'invalid-change': 0,
      drift: 0,
      'rate-limited': 0,
    },
    outcomes: {},
  }
  readonly #components: GossipComponents
  readonly #maxMessageBytes: number
  readonly #maxDriftMs: number
  readonly #perPeer: TokenBuckets
  /** Changes decoded by the validator, handed to the message handler (same message object). */
  readonly #decoded = new WeakMap<Message, Change[]>()
  #pending: Change[] = []
  #flush: NodeJS.Timeout | undefined
  #lastPublishAt = Number.NEGATIVE_INFINITY
  #received: Change[] = []
  #mergeSoon: NodeJS.Immediate | undefined
  #started = false

  get isStarted(): boolean {
    return this.#started
  }

  constructor(init: GossipInit, components: GossipComponents) {
    super()
    this.#components = components
    this.#maxMessageBytes = init.maxMessageBytes ?? MAX_GOSSIP_MESSAGE_BYTES
    this.#maxDriftMs = init.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS
    const rate = init.peerChangeRate ?? DEFAULT_PEER_CHANGE_RATE
    this.#perPeer = new TokenBuckets({ ratePerSecond: rate.perSecond, burst: rate.burst })
  }

  start(): void {
    if (this.#started) return
    this.#started = true
    const { pubsub } = this.#components.libp2p.services
    pubsub.topicValidators.set(CHANGES_TOPIC, this.#validate)
    pubsub.addEventListener('message', this.#onMessage)
    pubsub.subscribe(CHANGES_TOPIC)
    this.#components.replica.on('change', this.#onChange)
  }

  stop(): void {
    if (!this.#started) return
    this.#started = false
    const { pubsub } = this.#components.libp2p.services
    this.#components.replica.off('change', this.#onChange)
    pubsub.removeEventListener('message', this.#onMessage)
    pubsub.topicValidators.delete(CHANGES_TOPIC)
    if (pubsub.getTopics().includes(CHANGES_TOPIC)) pubsub.unsubscribe(CHANGES_TOPIC)
    clearTimeout(this.#flush)
    this.#flush = undefined
    this.#pending = []
    if (this.#mergeSoon) clearImmediate(this.#mergeSoon)
    this.#mergeSoon = undefined
    this.#received = []
  }

  readonly #onChange = (changes: Change[], source: ChangeSource): void => {
    if (source !== 'local') return
    this.#pending.push(...changes)
    if (this.#flush) return
    // The first change after a quiet spell goes out at once (next turn); under a stream of writes, one
    // message per PUBLISH_GAP_MS carries all of them. A message costs every agent far more than a
    // change in it does (encryption, framing, a syscall and a wake-up per copy), so this is what keeps
    // a busy writer from saturating a cluster; it adds at most PUBLISH_GAP_MS to a change's latency.
    const wait = Math.max(0, this.#lastPublishAt + PUBLISH_GAP_MS - performance.now())
    this.#flush = setTimeout(() => {
      this.#flush = undefined
      this.#publish()
    }, wait)
  }

  #publish(): void {
    const changes = this.#pending
    this.#pending = []
    this.#lastPublishAt = performance.now()
    for (const payload of encodeChangesMessages(changes, this.#maxMessageBytes)) {
      this.stats.messagesPublished++
      this.stats.bytesPublished += payload.length
      this.#components.libp2p.services.pubsub.publish(CHANGES_TOPIC, payload).catch((err: unknown) => {
        this.#components.log.warn({ err }, 'gossip publish failed; anti-entropy will carry the change')
      })
    }
    this.stats.changesPublished += changes.length
  }

  readonly #validate = (from: PeerId, message: Message): TopicValidatorResult => {
    const peer = from.toString()
    // A message costs its sender one change before it is read (so a flood is dropped cheaply), and the
    // rest of its changes once decoded.
    if (!this.#perPeer.take(peer, 1)) return this.#rateLimited(peer)
    try {
      const changes = decodeChangesMessage(message.data, {
        maxMessageBytes: this.#maxMessageBytes,
        maxDriftMs: this.#maxDriftMs,
        nowMs: Date.now(),
      })
      if (changes.length > 1 && !this.#perPeer.take(peer, changes.length - 1)) return this.#rateLimited(peer)
      this.#decoded.set(message, changes)
      return TopicValidatorResult.Accept
    } catch (err) {
      const { reason, message: detail } = err as GossipMessageError
      this.stats.rejected[reason]++
      this.#components.log.warn({ from: from.toString(), reason, detail }, 'rejected gossip message')
      this.emit('rejected', reason, from.toString())
      return TopicValidatorResult.Reject
    }
  }

  #rateLimited(peer: string): TopicValidatorResult {
    this.stats.rejected['rate-limited']++
    // One point per 100 ignored messages, fading: a burst past the limit is forgiven, a flood is not.
    this.#components.penalties?.add(peer, 0.01)
    if (this.stats.rejected['rate-limited'] % 1000 === 1) {
      this.#components.log.warn(
        { from: peer },
        'gossip: a peer sends changes faster than allowed; ignoring some',
      )
    }
    return TopicValidatorResult.Ignore
  }

  readonly #onMessage = (event: CustomEvent<Message>): void => {
    const message = event.detail
    if (message.topic !== CHANGES_TOPIC) return
    const changes = this.#decoded.get(message)
    if (!changes) return
    this.stats.messagesReceived++
    this.stats.changesReceived += changes.length
    // Messages heard in one event-loop turn are merged as one batch: one LevelDB write and one change
    // event instead of one per message, which is what keeps a busy receiver's merge queue short.
    this.#received.push(...changes)
    this.#mergeSoon ??= setImmediate(() => {
      this.#mergeSoon = undefined
      const received = this.#received
      this.#received = []
      // In slices, so that lookups are answered between them even when a burst arrived at once.
      for (let at = 0; at < received.length; at += APPLY_BATCH)
        this.#merge(received.slice(at, at + APPLY_BATCH))
    })
  }

  #merge(batch: Change[]): void {
    this.#components.replica.apply(batch, 'gossip').then(
      (outcomes) => {
        for (const outcome of outcomes) this.stats.outcomes[outcome] = (this.stats.outcomes[outcome] ?? 0) + 1
        const overQuota = outcomes.filter((o) => o === 'rejected-quota').length
        if (overQuota > 0) {
          this.#components.log.warn(
            { overQuota },
            'gossip: refused changes past the replica limit (OB_MAX_ENTITIES)',
          )
        }
      },
      (err: unknown) => this.#components.log.error({ err }, 'merging gossiped changes failed'),
    )
  }
}
