import type { Node } from '../model/index.ts'
import type { DatagramChannel } from '../p2p/datagram-channel.ts'
import type { Dial, FrameChannel } from '../p2p/frame-channel.ts'
import { signs } from '../replica/node-signature.ts'
import { TokenBuckets } from '../support/token-buckets.ts'
import { decodeSwimFrame } from './swim/codec.ts'
import type { Message } from './swim/swim.ts'
import { peerIdOf, type SwimTransport } from './swim-detector.ts'

export interface SwimTransportsInit {
  /**
   * How long a member that pinged us on a stream has its pings also answered on one, ms: it may not
   * hear UDP from us. @default 10000
   */
  streamReplyMs?: number
  /**
   * New connections a fallback may open per second, at most one at once. A connection costs TCP and
   * Noise handshakes and stays open; an overloaded cluster's failed probes (50 agents starting at once
   * on two cores) must not turn into a connection per member. A member behind a UDP firewall is probed
   * by each other member once per round, which this allows. @default 0.1
   */
  fallbackDialsPerSecond?: number
}

export interface SwimTransportsComponents {
  /** Datagrams; none when this node sends on streams only. */
  datagrams: DatagramChannel | undefined
  frames: FrameChannel
  /** Opens a connection to a member at its record's multiaddrs. */
  dial(peerId: string, multiaddrs: unknown): Dial
  /** A member's node record, by node id (the target of a ping-req). */
  record(nodeId: string): Node | undefined
}

/** Members whose last pings are kept for the stream fallback; past it the map starts over. */
const MAX_KEPT_PINGS = 1024
/** Pings kept per member: a probe's, and those relayed for ping-reqs meanwhile. */
const PINGS_KEPT = 3

/**
 * Where SWIM frames go: a UDP datagram to a member whose record declares `datagram`, a libp2p stream
 * to one that does not (the first SWIM release). And, as memberlist backs its UDP probes with TCP, a
 * stream as well where UDP may not get through:
 * - a probe that found no direct answer in time (its ping-reqs go out) sends its ping to the member
 *   again on a stream;
 * - a member that pinged us on a stream in the last `streamReplyMs` gets its acks on a stream too.
 *   Only a ping marks it, and only acks follow: a stream reply never leads to another, so the two
 *   ends do not keep each other on streams once UDP works again.
 * So a node whose UDP is dropped (a firewall) is not declared dead while its TCP port answers; in a
 * healthy cluster no stream is opened at all.
 */
export class SwimTransports implements SwimTransport {
  readonly #datagrams: DatagramChannel | undefined
  readonly #frames: FrameChannel
  readonly #components: SwimTransportsComponents
  readonly #streamReplyMs: number
  /** When each member last pinged us on a stream, local ms. */
  readonly #streamFrom = new Map<string, number>()
  /**
   * The last pings sent to each member (by peer id), resent on a stream when a probe of it goes
   * indirect: ours, and the ones we relay for others' ping-reqs, which share the member.
   */
  readonly #lastPings = new Map<string, Uint8Array[]>()
  readonly #fallbackDials: TokenBuckets
  /** Pings resent on a stream because their probe went indirect. */
  streamFallbacks = 0
  /** When a frame to a datagram member last went on a stream, local ms (0: never). */
  lastStreamedAt = 0

  constructor(init: SwimTransportsInit, components: SwimTransportsComponents) {
    this.#datagrams = components.datagrams
    this.#frames = components.frames
    this.#components = components
    this.#streamReplyMs = init.streamReplyMs ?? 10_000
    this.#fallbackDials = new TokenBuckets({
      ratePerSecond: init.fallbackDialsPerSecond ?? 0.1,
      burst: 1,
      maxKeys: 1,
    })
    this.#frames.on('frame', this.#noteStream)
  }

  send(peerId: string, data: Uint8Array, record: Node, message?: Message): boolean {
    if (message?.t === 'ping-req') this.#fallBackToStream(message.target)
    if (!this.#takesDatagrams(record)) return this.#stream(peerId, data, record)
    if (message?.t === 'ping') {
      if (this.#lastPings.size >= MAX_KEPT_PINGS && !this.#lastPings.has(peerId)) this.#lastPings.clear()
      this.#lastPings.set(peerId, [...(this.#lastPings.get(peerId) ?? []).slice(-(PINGS_KEPT - 1)), data])
    }
    const sent = this.#datagrams!.send(peerId, data, record.multiaddrs)
    const streamed =
      message?.t === 'ack' &&
      this.#pingedOnStream(peerId) &&
      this.#streamToDatagramMember(peerId, data, record)
    return sent || streamed || this.#stream(peerId, data, record)
  }

  /** Evidence that what we send a member does not arrive: forget its address, or its connections. */
  reset(peerId: string, reason: string): void {
    this.#lastPings.delete(peerId)
    if (this.#datagrams?.listening) this.#datagrams.reset(peerId)
    // Over UDP, a lost datagram says nothing about the libp2p connections (gossip and sync use them).
    else this.#frames.reset(peerId, reason)
  }

  on(event: 'frame', listener: (from: string, data: Uint8Array) => void): this {
    this.#datagrams?.on(event, listener)
    this.#frames.on(event, listener)
    return this
  }

  off(event: 'frame', listener: (from: string, data: Uint8Array) => void): this {
    this.#datagrams?.off(event, listener)
    this.#frames.off(event, listener)
    return this
  }

  #takesDatagrams(record: Node): boolean {
    return this.#datagrams?.listening === true && signs(record, 'datagram')
  }

  #pingedOnStream(peerId: string): boolean {
    const at = this.#streamFrom.get(peerId)
    return at !== undefined && Date.now() - at < this.#streamReplyMs
  }

  #fallBackToStream(target: string): void {
    const record = this.#components.record(target)
    const peerId = peerIdOf(record)
    if (record === undefined || peerId === undefined || !this.#takesDatagrams(record)) return
    const pings = this.#lastPings.get(peerId)
    if (pings === undefined) return
    this.#lastPings.delete(peerId)
    if (!this.#frames.peers().includes(peerId) && !this.#fallbackDials.take('dial', 1)) return
    this.streamFallbacks++
    for (const ping of pings) this.#streamToDatagramMember(peerId, ping, record)
  }

  #streamToDatagramMember(peerId: string, data: Uint8Array, record: Node): boolean {
    this.lastStreamedAt = Date.now()
    return this.#stream(peerId, data, record)
  }

  #stream(peerId: string, data: Uint8Array, record: Node): boolean {
    return this.#frames.send(peerId, data, this.#components.dial(peerId, record.multiaddrs))
  }

  readonly #noteStream = (from: string, data: Uint8Array): void => {
    if (!isPing(data)) return
    // Bounded by the peers that can open a stream to us (connected, cluster key): drop the stale ones.
    if (this.#streamFrom.size > 4096) {
      const now = Date.now()
      for (const [peer, at] of this.#streamFrom)
        if (now - at >= this.#streamReplyMs) this.#streamFrom.delete(peer)
    }
    this.#streamFrom.set(from, Date.now())
  }
}

/** Whether a frame is a ping (streams carry few frames: decoding one costs nothing that matters). */
function isPing(data: Uint8Array): boolean {
  try {
    return decodeSwimFrame(data).t === 'ping'
  } catch {
    return false // the SWIM detector counts it as malformed
  }
}
