import { EventEmitter } from 'node:events'
import type { Connection, IncomingStreamData, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { type Pushable, pushable } from 'it-pushable'
import { emitSafely } from '../support/emit-safely.ts'
import type { Logger } from '../support/logger.ts'
import type { Startable } from '../support/startable.ts'

export interface FrameChannelInit {
  /** The stream protocol id (`BEATS_PROTOCOL`, `SWIM_PROTOCOL`). */
  protocol: string
  /** Label of this channel's frames in logs. @default 'beat' */
  label?: string
  /** Largest frame sent or accepted, bytes. A peer that sends a larger one has its stream reset. */
  maxFrameBytes: number
  /**
   * Bytes that may wait unsent on one peer's stream. A peer that stops reading (a partition that
   * drops packets without closing the connection) has its stream reset rather than buffer beats
   * without bound; a new one is opened on the next beat.
   * @default 64 KiB
   */
  maxQueuedBytes?: number
  /**
   * A connection on which the peer has sent no beat for this long, ms, is closed: it is dead (a
   * half-open TCP connection after a crash or a partition), or the peer is no agent. Discovery dials
   * again when it can. This stands in for libp2p's connection monitor, which opens a ping stream on
   * every connection every 10 s. @default never
   */
  silentConnectionMs?: number
}

export interface FrameChannelComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'getConnections' | 'addEventListener' | 'removeEventListener'>
  log: Logger
}

export interface FrameChannelEvents {
  /** A frame from a connected peer (authenticated by the connection's Noise handshake). */
  frame: [from: string, data: Uint8Array]
  /** A peer sent a frame over `maxFrameBytes`; its stream was reset. */
  oversized: [from: string]
}

/** One peer's outbound stream: frames go pushable → length prefix → stream. */
interface Link {
  out: Pushable<Uint8Array>
  stream: Stream | undefined
}

/** Opens a connection to a peer that has none (the caller knows its addresses). */
export type Dial = () => Promise<Connection>

/**
 * Small frames, one hop, on one long-lived stream per peer and protocol: `broadcast` writes a frame to
 * every connected peer (liveness beats, `BEATS_PROTOCOL`), `send` to one peer, dialling it when
 * needed (SWIM probes, `SWIM_PROTOCOL`). Frames heard from peers are emitted as `frame`.
 *
 * Why not gossipsub: it signs every message, and delivers each to every node up to D times plus
 * IHAVE gossip; liveness frames are only useful once, and only from a sender whose identity the
 * connection already proves.
 */
export class FrameChannel extends EventEmitter<FrameChannelEvents> implements Startable {
  /** Streams reset because the peer stopped reading (more than `maxQueuedBytes` waiting). */
  stalledResets = 0
  readonly protocol: string
  readonly #label: string
  readonly #libp2p: FrameChannelComponents['libp2p']
  readonly #log: Logger
  readonly #maxFrameBytes: number
  readonly #maxQueuedBytes: number
  readonly #silentConnectionMs: number
  readonly #links = new Map<string, Link>()
  /** When each peer last sent us a frame, local ms. */
  readonly #heardAt = new Map<string, number>()
  #started = false

  get isStarted(): boolean {
    return this.#started
  }

  constructor(init: FrameChannelInit, components: FrameChannelComponents) {
    super()
    this.protocol = init.protocol
    this.#label = init.label ?? 'beat'
    this.#libp2p = components.libp2p
    this.#log = components.log
    this.#maxFrameBytes = init.maxFrameBytes
    this.#maxQueuedBytes = init.maxQueuedBytes ?? 64 * 1024
    this.#silentConnectionMs = init.silentConnectionMs ?? Number.POSITIVE_INFINITY
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#started = true
    await this.#libp2p.handle(this.protocol, this.#onStream, {
      // One stream each way per connection is the protocol; a few more ride out a reconnect race.
      maxInboundStreams: 4,
      maxOutboundStreams: 4,
      runOnLimitedConnection: false,
    })
    this.#libp2p.addEventListener('peer:disconnect', this.#onDisconnect)
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    this.#libp2p.removeEventListener('peer:disconnect', this.#onDisconnect)
    for (const peer of [...this.#links.keys()]) this.#drop(peer)
    this.#heardAt.clear()
    await this.#libp2p.unhandle(this.protocol).catch((err: unknown) => {
      this.#log.debug({ err, protocol: this.protocol }, 'cannot unregister the protocol')
    })
  }

  /** The peers a frame would go to now: one per open connection's remote peer. */
  peers(): string[] {
    const peers = new Set<string>()
    for (const connection of this.#libp2p.getConnections()) {
      if (connection.status === 'open') peers.add(connection.remotePeer.toString())
    }
    return [...peers]
  }

  /**
   * Queues `data` to every connected peer. Best effort: a peer whose stream is still opening, or
   * failed, misses this frame (a beat is superseded by the next one anyway). Also closes connections
   * silent for `silentConnectionMs`. Returns how many peers the frame was queued for.
   */
  broadcast(data: Uint8Array): number {
    if (!this.#started) return 0
    this.#checkSize(data)
    let queued = 0
    const now = Date.now()
    const byPeer = new Map<string, Connection>()
    for (const connection of this.#libp2p.getConnections()) {
      if (connection.status !== 'open') continue
      const peer = connection.remotePeer.toString()
      const heard = Math.max(connection.timeline.open, this.#heardAt.get(peer) ?? 0)
      if (now - heard > this.#silentConnectionMs) {
        this.#log.info(
          { peer, silentMs: now - heard },
          `closing a connection that carries no ${this.#label}s`,
        )
        connection.abort(new Error(`no ${this.#label} from ${peer} for ${now - heard} ms`))
        continue
      }
      byPeer.set(peer, connection)
    }
    for (const [peer, connection] of byPeer) {
      const link = this.#links.get(peer) ?? this.#open(peer, () => Promise.resolve(connection))
      if (link.stream === undefined) continue
      if (this.#push(peer, link, data)) queued++
    }
    return queued
  }

  /**
   * Queues `data` to one peer, over its open connection or, without one, a connection from `dial`;
   * the frame waits while the stream opens. Best effort: false when it was not queued (stopped, or
   * the peer stopped reading).
   */
  send(peer: string, data: Uint8Array, dial: Dial): boolean {
    if (!this.#started) return false
    this.#checkSize(data)
    let link = this.#links.get(peer)
    if (link === undefined) {
      const open = this.#libp2p.getConnections(peerIdFromString(peer)).find((c) => c.status === 'open')
      link = this.#open(peer, open === undefined ? dial : () => Promise.resolve(open))
    }
    return this.#push(peer, link, data)
  }

  /**
   * Closes every connection to a peer (its caller has evidence that they are half open: the peer is
   * up, but answers nothing sent on them), so the next `send` dials afresh.
   */
  reset(peer: string, reason: string): void {
    this.#drop(peer)
    for (const connection of this.#libp2p.getConnections(peerIdFromString(peer))) {
      this.#log.info({ peer, reason }, 'closing a connection that answers nothing')
      connection.abort(new Error(reason))
    }
  }

  /** A frame we would not accept from a peer is not sent: a bug of ours, thrown to the caller. */
  #checkSize(data: Uint8Array): void {
    if (data.byteLength > this.#maxFrameBytes) {
      throw new RangeError(
        `refusing to send a ${data.byteLength}-byte ${this.#label} (max ${this.#maxFrameBytes})`,
      )
    }
  }

  #push(peer: string, link: Link, data: Uint8Array): boolean {
    if (link.out.readableLength > this.#maxQueuedBytes) {
      this.#log.debug(
        { peer, queued: link.out.readableLength },
        `peer is not reading ${this.#label}s; resetting`,
      )
      this.stalledResets++
      this.#drop(peer)
      return false
    }
    link.out.push(data)
    return true
  }

  #open(peer: string, connect: Dial): Link {
    const link: Link = { out: pushable<Uint8Array>(), stream: undefined }
    this.#links.set(peer, link)
    connect()
      .then((connection) => connection.newStream(this.protocol, { runOnLimitedConnection: false }))
      .then((stream) => {
        if (this.#links.get(peer) !== link) {
          stream.abort(new Error(`${this.#label} link dropped while opening`))
          return
        }
        link.stream = stream
        return pipe(link.out, (source) => lp.encode(source), stream)
      })
      .catch((err: unknown) => this.#log.debug({ err, peer }, `${this.#label} stream failed`))
      .finally(() => {
        if (this.#links.get(peer) === link) this.#links.delete(peer)
      })
    return link
  }

  #drop(peer: string): void {
    const link = this.#links.get(peer)
    if (link === undefined) return
    this.#links.delete(peer)
    link.out.end()
    link.stream?.abort(new Error(`${this.#label} link closed`))
  }

  readonly #onDisconnect = (event: CustomEvent<PeerId>): void => {
    const peer = event.detail.toString()
    this.#drop(peer)
    this.#heardAt.delete(peer)
  }

  readonly #onStream = ({ stream, connection }: IncomingStreamData): void => {
    const from = connection.remotePeer.toString()
    pipe(
      stream,
      (source) => lp.decode(source, { maxDataLength: this.#maxFrameBytes }),
      async (frames) => {
        for await (const frame of frames) {
          if (!this.#started) break
          this.#heardAt.set(from, Date.now())
          this.#emitSafely('frame', from, frame.subarray())
        }
      },
    ).then(
      () => stream.close().catch(() => undefined),
      (err: Error & { name?: string }) => {
        if (err.name === 'InvalidDataLengthError') this.#emitSafely('oversized', from)
        else this.#log.debug({ err, peer: from }, `${this.#label} stream ended`)
        stream.abort(err)
      },
    )
  }

  /** A listener's exception must not end the peer's stream (and with it, its frames). */
  #emitSafely<K extends keyof FrameChannelEvents>(event: K, ...args: FrameChannelEvents[K]): void {
    emitSafely(this, this.#log, this.#label, event, args)
  }
}
