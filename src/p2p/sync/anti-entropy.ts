import { EventEmitter } from 'node:events'
import type { Connection, IncomingStreamData, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { MAX_SYNC_FRAME_BYTES, SYNC_PROTOCOL } from '../../model/wire.ts'
import { integerAtLeast } from '../../support/init-error.ts'
import { jittered } from '../../support/jitter.ts'
import type { Logger } from '../../support/logger.ts'
import type { Startable } from '../../support/startable.ts'
import { runClientSession } from './client.ts'
import { failureOf, SyncSessionError } from './errors.ts'
import { FramedStream } from './framed-stream.ts'
import {
  type AntiEntropyStats,
  accountSession,
  newStats,
  type SyncReport,
  type SyncRole,
  unrunReport,
} from './report.ts'
import { runServerSession } from './server.ts'
import { emptyResult, type SessionContext, type SyncReplica } from './session.ts'
import { StaleNodeGuard } from './stale.ts'

/** Tries of a sync on connect refused as busy. */
const BUSY_RETRIES = 5

export interface AntiEntropyInit {
  /**
   * Mean time between periodic sessions, ms. Each period the node syncs with one random connected peer
   * it is not already syncing with, so with N nodes each one takes part in about two sessions per
   * period; an in-sync session costs one round trip and ~200 bytes. Jittered ±20% so nodes do not act
   * in lockstep. 0 turns periodic sync off (sync on connect and `syncWith` still work).
   * @default 30000
   */
  intervalMs?: number
  /**
   * Longest one session may take, ms, from dial to close; it also bounds a peer that stops answering.
   * Must cover streaming a whole replica to a late joiner (about 3 s per 100,000 entries measured with
   * both ends in one process on a 2-core machine).
   * @default 30000
   */
  timeoutMs?: number
  /**
   * Largest frame sent or accepted, bytes; a peer announcing a longer one is cut off before its body
   * is buffered. At least 256 KiB (a round of 4,096 leaf digests is ~190 KB); entry lists are split
   * into frames of up to 256 KiB whatever the cap.
   * @default MAX_SYNC_FRAME_BYTES (4 MiB)
   */
  maxFrameBytes?: number
  /**
   * Sync with every newly connected peer. Only the side whose peer id string is smaller dials, so a
   * new connection costs one session, not two.
   * @default true
   */
  syncOnConnect?: boolean
  /**
   * Sessions running at once, with all peers together, in both roles. More are refused as `busy`
   * (the peer retries later), so many peers, or one peer with many identities, cannot make this agent
   * hold many sessions' worth of entries in memory at once.
   * @default DEFAULT_MAX_SESSIONS
   */
  maxSessions?: number
  /** Of those, sessions served to peers that are not known members (`isMember`). @default DEFAULT_MAX_STRANGER_SESSIONS */
  maxStrangerSessions?: number
  /** Wall clock for the stale-node rule and `lastContactMs`, ms; tests hand in a fake. @default Date.now */
  now?: () => number
}

/** What anti-entropy uses of libp2p. */
export type SyncLibp2p = Pick<
  Libp2p,
  'peerId' | 'handle' | 'unhandle' | 'dialProtocol' | 'getPeers' | 'addEventListener' | 'removeEventListener'
>

export interface AntiEntropyComponents {
  libp2p: SyncLibp2p
  replica: SyncReplica
  log: Logger
  /**
   * Whether a peer id is a known member (a node record names it). Peers that are not may hold at most
   * `maxStrangerSessions` of the sessions at once, so identities made up by the dozen cannot take every
   * slot. @default every peer is a member
   */
  isMember?: (peerId: string) => boolean
}

export interface AntiEntropyEvents {
  /** A session finished, in either role and with any outcome (`failed` ones carry a `reason`). */
  'peer:synced': [report: SyncReport]
}

export const DEFAULT_SYNC_INTERVAL_MS = 30_000
export const DEFAULT_SYNC_TIMEOUT_MS = 30_000
export const DEFAULT_MAX_SESSIONS = 8
export const DEFAULT_MAX_STRANGER_SESSIONS = 4
const MIN_FRAME_BYTES = 256 * 1024
/** Rounds stray ±20% around `intervalMs`, so peers started together do not sync in lockstep. */
const ROUND_JITTER = 0.2
/** Inbound sync streams per connection: one session per peer, plus one that may be refused as busy. */
const MAX_INBOUND_STREAMS = 2
/** How long a `busy` refusal may take to deliver before the stream is reset, ms. */
const REFUSAL_TIMEOUT_MS = 5_000

interface Session {
  readonly role: SyncRole
  readonly controller: AbortController
  done?: Promise<SyncReport>
}

/**
 * Anti-entropy (docs/protocols.md): compares digest trees with a peer and exchanges only the entries of
 * differing leaves, in both directions, on connect, periodically and on demand (`syncWith`). Serves
 * the same protocol to peers. Applies the stale-node rule (docs/replication.md, see `stale.ts`) before this
 * process's first successful session.
 *
 * At most one session per peer runs at a time. If both sides dial each other at once, the session
 * dialled by the smaller peer id is kept and the other is refused as `busy`.
 */
export class AntiEntropy extends EventEmitter<AntiEntropyEvents> implements Startable {
  readonly stats: AntiEntropyStats = newStats()
  readonly #libp2p: SyncLibp2p
  readonly #replica: SyncReplica
  readonly #log: Logger
  readonly #intervalMs: number
  readonly #timeoutMs: number
  readonly #maxFrameBytes: number
  readonly #syncOnConnect: boolean
  readonly #maxSessions: number
  readonly #maxStrangerSessions: number
  readonly #isMember: (peerId: string) => boolean
  /** Peers without a node record that a server session runs with. */
  readonly #strangers = new Set<string>()
  readonly #self: string
  /** Running sessions by `<role> <peer id>`. */
  readonly #sessions = new Map<string, Session>()
  /** Peers with an inbound session waiting for their previous one to end (at most one each). */
  readonly #waiting = new Set<string>()
  #started = false
  /** Serialises start() and stop(). */
  #transition: Promise<void> = Promise.resolve()
  /** Aborted by stop(): cancels every running session. */
  #stopController = new AbortController()
  #timer: ReturnType<typeof setTimeout> | undefined
  /** Bumped by stop(): a periodic tick still running from before does not reschedule. */
  #generation = 0
  readonly #staleGuard: StaleNodeGuard

  constructor(init: AntiEntropyInit, components: AntiEntropyComponents) {
    super()
    this.#libp2p = components.libp2p
    this.#replica = components.replica
    this.#log = components.log
    this.#intervalMs = integerAtLeast('intervalMs', init.intervalMs ?? DEFAULT_SYNC_INTERVAL_MS, 0)
    this.#timeoutMs = integerAtLeast('timeoutMs', init.timeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS, 1)
    this.#maxFrameBytes = integerAtLeast(
      'maxFrameBytes',
      init.maxFrameBytes ?? MAX_SYNC_FRAME_BYTES,
      MIN_FRAME_BYTES,
    )
    this.#syncOnConnect = init.syncOnConnect ?? true
    this.#maxSessions = integerAtLeast('maxSessions', init.maxSessions ?? DEFAULT_MAX_SESSIONS, 1)
    this.#maxStrangerSessions = integerAtLeast(
      'maxStrangerSessions',
      init.maxStrangerSessions ?? DEFAULT_MAX_STRANGER_SESSIONS,
      0,
    )
    this.#isMember = components.isMember ?? (() => true)
    this.#self = components.libp2p.peerId.toString()
    this.#staleGuard = new StaleNodeGuard({
      replica: components.replica,
      log: components.log,
      now: init.now ?? Date.now,
      onReset: () => this.stats.staleResets++,
    })
  }

  /** Serves the protocol, syncs on connect and periodically. Idempotent. */
  start(): Promise<void> {
    this.#transition = this.#transition.then(() => this.#start())
    return this.#transition
  }

  /** Cancels the timer and every running session, stops serving. Idempotent. */
  stop(): Promise<void> {
    this.#transition = this.#transition.then(() => this.#stop())
    return this.#transition
  }

  get isStarted(): boolean {
    return this.#started
  }

  /**
   * Runs one session with `peer` as client. Never rejects: a failure is a report with outcome
   * `failed`. If a session with that peer is already running as client, resolves with its report; if
   * one runs as server, waits for it and then runs a new one.
   */
  syncWith(peer: PeerId): Promise<SyncReport> {
    const id = peer.toString()
    const running = this.#sessions.get(sessionKey('client', id))?.done
    if (running) return running
    const serving = this.#sessions.get(sessionKey('server', id))?.done
    if (serving) return serving.then(() => this.syncWith(peer))
    if (!this.#started) return Promise.resolve(unrunReport(id, 'stopped'))
    if (this.#sessions.size >= this.#maxSessions) return Promise.resolve(unrunReport(id, 'busy'))
    return this.#track('client', id, async (signal) => {
      try {
        return await this.#libp2p.dialProtocol(peer, SYNC_PROTOCOL, { signal, runOnLimitedConnection: false })
      } catch (err) {
        if (signal.aborted) throw signal.reason
        throw new SyncSessionError('dial-failed', (err as Error).message, { cause: err })
      }
    })
  }

  async #start(): Promise<void> {
    if (this.#started) return
    await this.#libp2p.handle(SYNC_PROTOCOL, this.#onStream, {
      maxInboundStreams: MAX_INBOUND_STREAMS,
      runOnLimitedConnection: false,
    })
    this.#started = true
    this.#stopController = new AbortController()
    if (this.#syncOnConnect) this.#libp2p.addEventListener('connection:open', this.#onConnect)
    this.#schedule(this.#generation)
    this.#log.debug({ intervalMs: this.#intervalMs, timeoutMs: this.#timeoutMs }, 'anti-entropy started')
  }

  async #stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    this.#generation++
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#libp2p.removeEventListener('connection:open', this.#onConnect)
    this.#stopController.abort(new SyncSessionError('stopped', 'anti-entropy stopped'))
    try {
      await this.#libp2p.unhandle(SYNC_PROTOCOL)
    } catch (err) {
      this.#log.warn({ err }, 'anti-entropy: could not unregister the protocol handler')
    }
    await Promise.allSettled([...this.#sessions.values()].map((s) => s.done))
    this.#sessions.clear()
    this.#waiting.clear()
    this.#log.debug('anti-entropy stopped')
  }

  readonly #onStream = ({ stream, connection }: IncomingStreamData): void => {
    const peer = connection.remotePeer.toString()
    this.#serve(stream, peer).catch((err: unknown) =>
      this.#log.error({ err, peer }, 'anti-entropy: inbound stream handler failed'),
    )
  }

  async #serve(raw: Stream, peer: string): Promise<void> {
    if (!this.#started) {
      raw.abort(new Error('anti-entropy is stopped'))
      return
    }
    // A client that starts its next session the moment the last one ended can get here before that
    // session's cleanup: wait for it (it is bounded by the timeout) rather than refuse.
    const serving = this.#sessions.get(sessionKey('server', peer))?.done
    if (serving && !this.#waiting.has(peer)) {
      this.#waiting.add(peer)
      await serving.finally(() => this.#waiting.delete(peer))
    }
    if (!this.#started) {
      raw.abort(new Error('anti-entropy is stopped'))
      return
    }
    const member = this.#isMember(peer)
    if (this.#busyWith(peer, member)) {
      await this.#refuse(raw, peer)
      return
    }
    if (member) {
      await this.#track('server', peer, async () => raw)
      return
    }
    this.#strangers.add(peer)
    await this.#track('server', peer, async () => raw).finally(() => this.#strangers.delete(peer))
  }

  /**
   * Whether an inbound session from `peer` must be refused: one with it is already running, or as
   * many as this agent runs at once (with members, or with strangers).
   */
  #busyWith(peer: string, member: boolean): boolean {
    if (this.#sessions.has(sessionKey('server', peer))) return true
    if (this.#sessions.size >= this.#maxSessions) return true
    if (!member && this.#strangers.size >= this.#maxStrangerSessions) return true
    // Both sides dialled each other: the session dialled by the smaller peer id goes on.
    return this.#sessions.has(sessionKey('client', peer)) && this.#self < peer
  }

  async #refuse(raw: Stream, peer: string): Promise<void> {
    const controller = new AbortController()
    const timer = setTimeout(
      () => controller.abort(new SyncSessionError('timeout', 'busy refusal not delivered')),
      REFUSAL_TIMEOUT_MS,
    )
    const onStop = () => controller.abort(this.#stopController.signal.reason)
    this.#stopController.signal.addEventListener('abort', onStop, { once: true })
    const stream = new FramedStream(raw, { maxFrameBytes: this.#maxFrameBytes, signal: controller.signal })
    try {
      await stream.send({ type: 'error', reason: 'busy' })
      await stream.close()
      this.#log.debug(
        { peer },
        'anti-entropy: refused a session (one with that peer runs, or the most at once)',
      )
    } catch (err) {
      stream.abort(err)
    } finally {
      clearTimeout(timer)
      this.#stopController.signal.removeEventListener('abort', onStop)
    }
  }

  readonly #onConnect = (event: CustomEvent<Connection>): void => {
    const connection = event.detail
    // Relayed connections with limits are not for bulk transfer.
    if (connection.limits !== undefined) return
    const peer = connection.remotePeer
    const id = peer.toString()
    if (!(this.#self < id) || this.#sessions.has(sessionKey('server', id))) return
    void this.#syncAfterConnect(peer, 0)
  }

  /**
   * A sync on connect that the peer refused as `busy` (a seed that a whole cluster joins at once) is
   * tried again after a second or two, a few times, rather than at the next periodic round.
   */
  async #syncAfterConnect(peer: PeerId, attempt: number): Promise<void> {
    const report = await this.syncWith(peer)
    if (report.reason !== 'busy' || attempt >= BUSY_RETRIES || !this.#started) return
    const retry = setTimeout(() => void this.#syncAfterConnect(peer, attempt + 1), jittered(1500, 0.5))
    retry.unref()
  }

  #schedule(generation: number): void {
    if (!this.#started || this.#intervalMs === 0 || generation !== this.#generation) return
    const delay = jittered(this.#intervalMs, ROUND_JITTER)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#tick()
        .catch((err: unknown) => this.#log.error({ err }, 'anti-entropy: periodic sync failed'))
        .finally(() => this.#schedule(generation))
    }, delay)
    this.#timer.unref()
  }

  /** One periodic sync, with a random connected peer that no session runs with. */
  async #tick(): Promise<void> {
    const idle = this.#libp2p.getPeers().filter((peer) => {
      const id = peer.toString()
      return !this.#sessions.has(sessionKey('client', id)) && !this.#sessions.has(sessionKey('server', id))
    })
    if (idle.length === 0) return
    await this.syncWith(idle[Math.floor(Math.random() * idle.length)]!)
  }

  /** Registers a session while it runs, so that no second one with the same peer starts. */
  #track(role: SyncRole, peer: string, open: (signal: AbortSignal) => Promise<Stream>): Promise<SyncReport> {
    const key = sessionKey(role, peer)
    const session: Session = { role, controller: new AbortController() }
    this.#sessions.set(key, session)
    session.done = this.#run(role, peer, session.controller, open).finally(() => {
      if (this.#sessions.get(key) === session) this.#sessions.delete(key)
    })
    return session.done
  }

  /** Runs one session to its end; every error is caught and becomes the report's reason. */
  async #run(
    role: SyncRole,
    peer: string,
    controller: AbortController,
    open: (signal: AbortSignal) => Promise<Stream>,
  ): Promise<SyncReport> {
    const started = performance.now()
    const { signal } = controller
    const log = this.#log.child({ peer, role })
    const onStop = () => controller.abort(this.#stopController.signal.reason)
    this.#stopController.signal.addEventListener('abort', onStop, { once: true })
    const timer = setTimeout(
      () =>
        controller.abort(new SyncSessionError('timeout', `session took longer than ${this.#timeoutMs} ms`)),
      this.#timeoutMs,
    )
    timer.unref()
    const ctx: SessionContext = {
      replica: this.#replica,
      log,
      maxFrameBytes: this.#maxFrameBytes,
      result: emptyResult(),
    }
    let stream: FramedStream | undefined
    let pullOnly = false
    let error: unknown
    try {
      pullOnly = await this.#staleGuard.beforeSession()
      signal.throwIfAborted()
      stream = new FramedStream(await open(signal), { maxFrameBytes: this.#maxFrameBytes, signal })
      if (role === 'client') await runClientSession(stream, ctx, { pullOnly })
      else await runServerSession(stream, ctx)
      await stream.close()
    } catch (err) {
      error = signal.aborted ? signal.reason : err
      stream?.abort(error)
    } finally {
      clearTimeout(timer)
      this.#stopController.signal.removeEventListener('abort', onStop)
    }
    const { result } = ctx
    const report: SyncReport = {
      peer,
      role,
      outcome: error === undefined ? result.outcome : 'failed',
      rounds: result.rounds,
      entriesReceived: result.entriesReceived,
      entriesSent: result.entriesSent,
      bytesReceived: stream?.bytesReceived ?? 0,
      bytesSent: stream?.bytesSent ?? 0,
      ms: Math.round(performance.now() - started),
      pullOnly,
    }
    if (error !== undefined) report.reason = failureOf(error)
    accountSession(this.stats, report, ctx.result, log, error)
    if (error === undefined) await this.#staleGuard.noteContact(log)
    try {
      this.emit('peer:synced', report)
    } catch (err) {
      log.error({ err }, 'anti-entropy: a peer:synced listener threw')
    }
    return report
  }
}

function sessionKey(role: SyncRole, peer: string): string {
  return `${role} ${peer}`
}
