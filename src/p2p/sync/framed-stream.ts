import type { Stream } from '@libp2p/interface'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { type Pushable, pushable } from 'it-pushable'
import type { Uint8ArrayList } from 'uint8arraylist'
import { SyncSessionError } from './errors.ts'
import { decodeFrame, type Frame } from './messages.ts'

export interface FramedStreamInit {
  /** Largest frame accepted or sent, bytes (the length prefix is checked before the body is buffered). */
  maxFrameBytes: number
  /** Aborting it resets the stream; pending sends and receives reject with the signal's reason. */
  signal: AbortSignal
}

/**
 * Outgoing bytes buffered before `send` waits for the stream to drain. Keeps a fast sender from
 * queueing a whole replica in memory when the peer or the network is slower.
 */
const HIGH_WATER_BYTES = 1024 * 1024

/**
 * Length-prefixed JSON frames over one libp2p stream, in the pattern of gossipsub's `stream.ts`:
 * outgoing frames go pushable → length-prefix encode → stream sink; incoming bytes go stream source →
 * length-prefix decode (capped by `maxDataLength`) → `receive()`. Counts the bytes both ways.
 */
export class FramedStream {
  bytesSent = 0
  bytesReceived = 0
  readonly #stream: Stream
  readonly #maxFrameBytes: number
  readonly #signal: AbortSignal
  readonly #out: Pushable<Uint8ArrayList>
  readonly #in: AsyncIterator<Uint8ArrayList>
  /** Settles when the sink has written everything (or failed); never rejects. */
  readonly #sinkDone: Promise<Error | undefined>
  readonly #onAbort: () => void

  constructor(stream: Stream, init: FramedStreamInit) {
    this.#stream = stream
    this.#maxFrameBytes = init.maxFrameBytes
    this.#signal = init.signal
    this.#out = pushable<Uint8ArrayList>()
    this.#sinkDone = pipe(this.#out, stream).then(
      () => undefined,
      (err: Error) => err,
    )
    this.#in = pipe(stream, (source) => lp.decode(source, { maxDataLength: init.maxFrameBytes }))[
      Symbol.asyncIterator
    ]()
    this.#onAbort = () => this.abort(this.#signal.reason)
    if (this.#signal.aborted) this.#onAbort()
    else this.#signal.addEventListener('abort', this.#onAbort, { once: true })
  }

  /** Queues one frame; waits while more than `HIGH_WATER_BYTES` are waiting to be written. */
  async send(frame: Frame | Uint8Array): Promise<void> {
    this.#signal.throwIfAborted()
    const bytes = frame instanceof Uint8Array ? frame : Buffer.from(JSON.stringify(frame))
    if (bytes.byteLength > this.#maxFrameBytes) {
      throw new SyncSessionError('internal-error', `refusing to send a ${bytes.byteLength}-byte frame`)
    }
    this.#out.push(lp.encode.single(bytes))
    this.bytesSent += bytes.byteLength
    if (this.#out.readableLength > HIGH_WATER_BYTES) {
      const failed = await Promise.race([this.#out.onEmpty({ signal: this.#signal }), this.#sinkDone])
      if (failed) throw new SyncSessionError('closed', `stream closed while sending: ${failed.message}`)
    }
  }

  /** The next frame, validated; undefined when the peer closed the stream cleanly between frames. */
  async receive(): Promise<Frame | undefined> {
    this.#signal.throwIfAborted()
    const next = await this.#in.next()
    if (next.done) return undefined
    this.bytesReceived += next.value.byteLength
    return decodeFrame(next.value)
  }

  /** The next frame, which must be one of `types` (an `error` frame from the peer ends the session). */
  async expect<T extends Frame['type']>(...types: T[]): Promise<Extract<Frame, { type: T }>> {
    const frame = await this.receive()
    if (frame === undefined)
      throw new SyncSessionError('closed', `stream ended while waiting for ${types.join('/')}`)
    if ((types as string[]).includes(frame.type)) return frame as Extract<Frame, { type: T }>
    if (frame.type === 'error') {
      throw new SyncSessionError(frame.reason === 'busy' ? 'busy' : 'remote-error', `peer: ${frame.reason}`)
    }
    throw new SyncSessionError('unexpected-frame', `got ${frame.type} while waiting for ${types.join('/')}`)
  }

  /** Flushes what is queued, then closes both directions. Falls back to a reset if that fails. */
  async close(): Promise<void> {
    this.#out.end()
    const failed = await this.#sinkDone
    this.#signal.removeEventListener('abort', this.#onAbort)
    if (failed) {
      this.#stream.abort(failed)
      throw new SyncSessionError('closed', `stream closed while sending: ${failed.message}`)
    }
    try {
      await this.#stream.close({ signal: this.#signal })
    } catch (err) {
      this.#stream.abort(err as Error)
    }
  }

  /** Resets the stream at once (a session that failed or was cancelled). */
  abort(reason: unknown): void {
    this.#signal.removeEventListener('abort', this.#onAbort)
    this.#out.end()
    this.#stream.abort(reason instanceof Error ? reason : new Error(String(reason)))
  }
}
