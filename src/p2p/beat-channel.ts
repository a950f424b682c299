import { EventEmitter } from 'node:events'
import type { Connection, IncomingStreamData, Libp2p, PeerId, Stream } from '@libp2p/interface'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { type Pushable, pushable } from 'it-pushable'
import { BEATS_PROTOCOL } from '../model/wire.ts'
import { emitSafely } from '../support/emit-safely.ts'
import type { Logger } from '../support/logger.ts'
import type { Startable } from '../support/startable.ts'

export interface BeatChannelInit {
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

export interface BeatChannelComponents {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'getConnections' | 'addEventListener' | 'removeEventListener'>
  log: Logger
}

export interface BeatChannelEvents {
  /** A frame from a directly connected peer (authenticated by the connection's Noise handshake). */
  frame: [from: string, data: Uint8Array]
  /** A peer sent a frame over `maxFrameBytes`; its stream was reset. */
  oversized: [from: string]
}

/** One peer's outbound stream: frames go pushable → length prefix → stream. */
interface Link {
  out: Pushable<Uint8Array>
  stream: Stream | undefined
}

/**
 * Liveness beats, one hop: `broadcast` writes a frame to every directly connected peer on one
 * long-lived stream per peer (`BEATS_PROTOCOL`), and frames heard from peers are emitted as `frame`.
 *
 * Why not gossipsub: it signs every message, and delivers each to every node up to D times plus
 * IHAVE gossip; an idle cluster spends nearly all its bytes and CPU on beats, which are only useful
 * once and only from a sender whose identity the connection already proves. Nodes that are not
 * connected hear of each other through the ages relayed inside beats (see `beat.ts`).
 */
export class BeatChannel extends EventEmitter<BeatChannelEvents> implements Startable {
  /** Streams reset because the peer stopped reading (more than `maxQueuedBytes` waiting). */
  stalledResets = 0
  readonly #libp2p: BeatChannelComponents['libp2p']
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

  constructor(init: BeatChannelInit, components: BeatChannelComponents) {
    super()
    this.#libp2p = components.libp2p
    this.#log = components.log
    this.#maxFrameBytes = init.maxFrameBytes
    this.#maxQueuedBytes = init.maxQueuedBytes ?? 64 * 1024
    this.#silentConnectionMs = init.silentConnectionMs ?? Number.POSITIVE_INFINITY
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#started = true
    await this.#libp2p.handle(BEATS_PROTOCOL, this.#onStream, {
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
    await this.#libp2p.unhandle(BEATS_PROTOCOL).catch((err: unknown) => {
      this.#log.debug({ err }, 'cannot unregister the beats protocol')
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
    if (data.byteLength > this.#maxFrameBytes) {
      throw new RangeError(`refusing to send a ${data.byteLength}-byte beat (max ${this.#maxFrameBytes})`)
    }
    let queued = 0
    const now = Date.now()
    const byPeer = new Map<string, Connection>()
    for (const connection of this.#libp2p.getConnections()) {
      if (connection.status !== 'open') continue
      const peer = connection.remotePeer.toString()
      const heard = Math.max(connection.timeline.open, this.#heardAt.get(peer) ?? 0)
      if (now - heard > this.#silentConnectionMs) {
        this.#log.info({ peer, silentMs: now - heard }, 'closing a connection that carries no beats')
        connection.abort(new Error(`no beat from ${peer} for ${now - heard} ms`))
        continue
      }
      byPeer.set(peer, connection)
    }
    for (const [peer, connection] of byPeer) {
      const link = this.#links.get(peer) ?? this.#open(peer, connection)
      if (link.stream === undefined) continue
      if (link.out.readableLength > this.#maxQueuedBytes) {
        this.#log.debug({ peer, queued: link.out.readableLength }, 'peer is not reading beats; resetting')
        this.stalledResets++
        this.#drop(peer)
        continue
      }
      link.out.push(data)
      queued++
    }
    return queued
  }

  #open(peer: string, connection: Connection): Link {
    const link: Link = { out: pushable<Uint8Array>(), stream: undefined }
    this.#links.set(peer, link)
    connection
      .newStream(BEATS_PROTOCOL, { runOnLimitedConnection: false })
      .then((stream) => {
        if (this.#links.get(peer) !== link) {
          stream.abort(new Error('beat link dropped while opening'))
          return
        }
        link.stream = stream
        return pipe(link.out, (source) => lp.encode(source), stream)
      })
      .catch((err: unknown) => this.#log.debug({ err, peer }, 'beat stream failed'))
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
    link.stream?.abort(new Error('beat link closed'))
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
        else this.#log.debug({ err, peer: from }, 'beat stream ended')
        stream.abort(err)
      },
    )
  }

  /** A listener's exception must not end the peer's stream (and with it, its beats). */
  #emitSafely<K extends keyof BeatChannelEvents>(event: K, ...args: BeatChannelEvents[K]): void {
    emitSafely(this, this.#log, 'beat', event, args)
  }
}
