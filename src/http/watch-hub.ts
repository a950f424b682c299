import type { ServerResponse } from 'node:http'
import { encode } from 'eventsource-encoder'
import type { IndexedAnswer, ReadModel } from './read-model.ts'

/** Watch streams and blocking queries held open at once; one more is answered 503. */
export const DEFAULT_MAX_WATCHERS = 10_000
/** A comment line this often keeps idle streams open through proxies and idle timeouts. */
export const KEEP_ALIVE_MS = 15_000
/** Blocking queries: how long `wait` is when not given, and at most (Consul's habit). */
export const DEFAULT_WAIT_MS = 5 * 60 * 1000
export const MAX_WAIT_MS = 10 * 60 * 1000

export type WatchKind = 'instances' | 'nodes' | 'services' | 'definitions'

/**
 * Watch streams (`…/watch`, Server-Sent Events) and blocking queries (`?index=&wait=`): both wait for
 * the read model to announce a change, then compare the watched answer with the one last sent, so a
 * change elsewhere in the registry sends nothing.
 *
 * A stream costs one pending answer, never a queue: while the client does not read (the socket's
 * buffer is full), changes only mark the stream stale, and the latest answer is written when it drains.
 */
export class WatchHub {
  readonly maxWatchers: number
  readonly #read: ReadModel
  #active = 0
  /** Streams and blocking queries ended by `close`, so a stopping agent does not wait for them. */
  readonly #open = new Set<() => void>()
  /** The SSE event of an answer, encoded once however many streams send it (answers share bytes). */
  readonly #events = new WeakMap<Buffer, { index: number; event: Buffer }>()

  constructor(read: ReadModel, maxWatchers = DEFAULT_MAX_WATCHERS) {
    this.#read = read
    this.maxWatchers = maxWatchers
  }

  /** Watch streams and blocking queries open now. */
  get active(): number {
    return this.#active
  }

  /** Takes a slot; false when all are taken. */
  acquire(): boolean {
    if (this.#active >= this.maxWatchers) return false
    this.#active++
    return true
  }

  /**
   * Streams `answer()` as SSE events on `res` (headers already decided here): now unless `resumeFrom`
   * is the current answer's index, then after every change that alters it. Ends when the client goes.
   */
  stream(
    res: ServerResponse,
    kind: WatchKind,
    answer: () => IndexedAnswer,
    resumeFrom: number | undefined,
  ): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    })
    // Out now, not with the first event: a resumed stream may have nothing to send for a while.
    res.flushHeaders()
    let sent = resumeFrom
    let stale = false
    const send = (): void => {
      if (res.writableNeedDrain) {
        stale = true
        return
      }
      stale = false
      const current = answer()
      if (current.index === sent) return
      sent = current.index
      res.write(this.#event(kind, current))
    }
    const onChange = (): void => {
      try {
        send()
      } catch {
        end()
      }
    }
    const onDrain = (): void => {
      if (stale) onChange()
    }
    const keepAlive = setInterval(() => {
      if (!res.writableNeedDrain) res.write(': keep-alive\n\n')
    }, KEEP_ALIVE_MS)
    keepAlive.unref()
    const end = (): void => {
      clearInterval(keepAlive)
      this.#read.off(kind, onChange)
      res.off('drain', onDrain)
      if (this.#open.delete(end)) this.#active--
      if (!res.writableEnded) res.end()
    }
    this.#open.add(end)
    res.on('drain', onDrain)
    res.once('close', end)
    this.#read.on(kind, onChange)
    send()
  }

  #event(kind: WatchKind, { bytes, index }: IndexedAnswer): Buffer {
    const known = this.#events.get(bytes)
    if (known?.index === index) return known.event
    const event = Buffer.from(encode({ event: kind, id: String(index), data: bytes.toString('utf8') }))
    this.#events.set(bytes, { index, event })
    return event
  }

  /**
   * A blocking query: resolves with `answer()` once its index differs from `index`, or after `waitMs`
   * (plus up to a sixteenth of it, so that clients that came together do not come back together), or
   * when `gone` fires (the client left).
   */
  block(
    kind: WatchKind,
    answer: () => IndexedAnswer,
    index: number,
    waitMs: number,
    gone: (listener: () => void) => void,
  ): Promise<IndexedAnswer> {
    const first = answer()
    if (first.index !== index) {
      this.#active--
      return Promise.resolve(first)
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(), waitMs + Math.random() * (waitMs / 16))
      const onChange = (): void => {
        if (answer().index !== index) finish()
      }
      const finish = (): void => {
        clearTimeout(timer)
        this.#read.off(kind, onChange)
        if (this.#open.delete(finish)) this.#active--
        resolve(answer())
      }
      this.#open.add(finish)
      this.#read.on(kind, onChange)
      gone(finish)
    })
  }

  /** Ends every stream and answers every blocking query now (the agent is stopping). */
  close(): void {
    for (const end of [...this.#open]) end()
  }
}

/** `Last-Event-ID` as an index (an EventSource that reconnects sends it), when it is one. */
export function lastEventId(headers: Record<string, string | string[] | undefined>): number | undefined {
  const value = headers['last-event-id']
  if (typeof value !== 'string' || !/^\d+$/.test(value)) return undefined
  return Number(value)
}
