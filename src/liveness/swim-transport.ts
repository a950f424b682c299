import type { Node } from '../model/index.ts'
import type { DatagramChannel } from '../p2p/datagram-channel.ts'
import type { Dial, FrameChannel } from '../p2p/frame-channel.ts'
import { signs } from '../replica/node-signature.ts'
import type { Message } from './swim/swim.ts'
import type { SwimTransport } from './swim-detector.ts'

export interface SwimTransportsInit {
  /**
   * How long a member that sent us a frame on a stream is also answered on one, ms: it may not hear
   * UDP from us. @default 10000
   */
  streamReplyMs?: number
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

/** Last ping frames kept per member, for the stream fallback; past it the map starts over. */
const MAX_KEPT_PINGS = 1024

/**
 * Where SWIM frames go: a UDP datagram to a member whose record declares `datagram`, a libp2p stream
 * to one that does not (the first SWIM release). And, as memberlist backs its UDP probes with TCP, a
 * stream as well where UDP may not get through:
 * - a probe that found no direct answer in time (its ping-reqs go out) sends its ping to the member
 *   again on a stream;
 * - a member that reached us on a stream in the last `streamReplyMs` is answered on a stream too.
 * So a node whose UDP is dropped (a firewall) is not declared dead while its TCP port answers; in a
 * healthy cluster no stream is opened at all.
 */
export class SwimTransports implements SwimTransport {
  readonly #datagrams: DatagramChannel | undefined
  readonly #frames: FrameChannel
  readonly #components: SwimTransportsComponents
  readonly #streamReplyMs: number
  /** When each member last sent us a frame on a stream, local ms. */
  readonly #streamFrom = new Map<string, number>()
  /** The last ping sent to each member (by peer id), resent on a stream if the probe goes indirect. */
  readonly #lastPing = new Map<string, Uint8Array>()
  /** Pings resent on a stream because their probe went indirect. */
  streamFallbacks = 0

  constructor(init: SwimTransportsInit, components: SwimTransportsComponents) {
    this.#datagrams = components.datagrams
    this.#frames = components.frames
    this.#components = components
    this.#streamReplyMs = init.streamReplyMs ?? 10_000
    this.#frames.on('frame', this.#noteStream)
  }

  send(peerId: string, data: Uint8Array, record: Node, message?: Message): boolean {
    if (message?.t === 'ping-req') this.#fallBackToStream(message.target)
    if (!this.#takesDatagrams(record)) return this.#stream(peerId, data, record)
    if (message?.t === 'ping') {
      if (this.#lastPing.size >= MAX_KEPT_PINGS && !this.#lastPing.has(peerId)) this.#lastPing.clear()
      this.#lastPing.set(peerId, data)
    }
    const sent = this.#datagrams!.send(peerId, data, record.multiaddrs)
    const streamed = this.#recentlyOnStream(peerId) && this.#stream(peerId, data, record)
    return sent || streamed || this.#stream(peerId, data, record)
  }

  /** Evidence that what we send a member does not arrive: forget its address, or its connections. */
  reset(peerId: string, reason: string): void {
    this.#lastPing.delete(peerId)
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

  #recentlyOnStream(peerId: string): boolean {
    const at = this.#streamFrom.get(peerId)
    return at !== undefined && Date.now() - at < this.#streamReplyMs
  }

  #fallBackToStream(target: string): void {
    const record = this.#components.record(target)
    const peerId = typeof record?.peerId === 'string' ? record.peerId : undefined
    if (record === undefined || peerId === undefined || !this.#takesDatagrams(record)) return
    const ping = this.#lastPing.get(peerId)
    if (ping === undefined) return
    this.#lastPing.delete(peerId)
    this.streamFallbacks++
    this.#stream(peerId, ping, record)
  }

  #stream(peerId: string, data: Uint8Array, record: Node): boolean {
    return this.#frames.send(peerId, data, this.#components.dial(peerId, record.multiaddrs))
  }

  readonly #noteStream = (from: string): void => {
    // Bounded by the peers that can open a stream to us (connected, cluster key): drop the stale ones.
    if (this.#streamFrom.size > 4096) {
      const now = Date.now()
      for (const [peer, at] of this.#streamFrom)
        if (now - at >= this.#streamReplyMs) this.#streamFrom.delete(peer)
    }
    this.#streamFrom.set(from, Date.now())
  }
}
