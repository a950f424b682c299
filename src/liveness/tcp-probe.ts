import { isIP, type LookupFunction, Socket } from 'node:net'
import type { Instance } from '../model/index.ts'

/**
 * Port probed for an instance registered without one, by scheme. `grpc` (and `grpcs`) use 443 like
 * grpc-go and grpc-js do for a target without a port; any other scheme (`tcp`, `redis`, …) has no
 * default here: such an instance must be registered with a port, or it is marked `Error`.
 */
export const DEFAULT_PROBE_PORTS: Readonly<Record<string, number>> = {
  http: 80,
  https: 443,
  ws: 80,
  wss: 443,
  grpc: 443,
  grpcs: 443,
}

/** Where a probe connects. */
export interface ProbeTarget {
  host: string
  port: number
}

/**
 * The address to probe: `host`, else `ip`, else the URL's host name (the names clients dial), and
 * `port`, else the URL's port, else `DEFAULT_PROBE_PORTS[scheme]`. Returns `{ problem }` (a sentence
 * for `details`) when there is nothing usable to connect to.
 */
export function probeTargetOf(instance: Instance): ProbeTarget | { problem: string } {
  const u = URL.parse(instance.url)
  const fromUrl = u?.hostname.replace(/^\[(.*)\]$/, '$1')
  const host = instance.host ?? instance.ip ?? (fromUrl === '' ? undefined : fromUrl)
  if (host === undefined) return { problem: `cannot probe: no host or ip in ${instance.url}` }
  const scheme = instance.scheme.toLowerCase()
  const port = instance.port ?? (u?.port ? Number(u.port) : DEFAULT_PROBE_PORTS[scheme])
  if (port === undefined) {
    return {
      problem: `cannot probe: no port, and scheme "${scheme}" has no default port; register the instance with a port`,
    }
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    return { problem: `cannot probe: port ${port} is not 1-65535` }
  }
  return { host, port }
}

/** `host:port`, IPv6 in brackets: a log field, and the key that tells whether an address changed. */
export function targetKey(target: ProbeTarget): string {
  return isIP(target.host) === 6 ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`
}

export type TcpProbeResult =
  | { ok: true; ms: number }
  /** `reason`: why it failed, e.g. `connect ECONNREFUSED 127.0.0.1:5001`, `no answer within 2000 ms`. */
  | { ok: false; ms: number; reason: string; cancelled?: true }

export interface TcpProbeOptions {
  timeoutMs: number
  /** Monotonic ms clock that times the connect. */
  now: () => number
  /** Host name resolution (`dns.lookup` when absent). */
  lookup?: LookupFunction | undefined
}

/**
 * A connect in flight: `result` always resolves (never rejects), once the socket is closed; `cancel`
 * ends it at once.
 */
export interface TcpProbe {
  readonly result: Promise<TcpProbeResult>
  cancel(): void
}

/**
 * One TCP connect with a deadline covering name resolution and the handshake. The socket is destroyed
 * as soon as the outcome is known (nothing is sent), and on `cancel`.
 */
export function tcpProbe(target: ProbeTarget, options: TcpProbeOptions): TcpProbe {
  const { promise, resolve } = Promise.withResolvers<TcpProbeResult>()
  const started = options.now()
  const socket = new Socket()
  let done = false
  const finish = (outcome: { ok: true } | { ok: false; reason: string; cancelled?: true }): void => {
    if (done) return
    done = true
    clearTimeout(timer)
    const result = { ...outcome, ms: Math.max(0, options.now() - started) }
    // Resolved once the handle is closed, so that whoever awaits it (a stopping prober) leaves no socket.
    socket.once('close', () => resolve(result))
    socket.destroy()
  }
  const timer = setTimeout(
    () => finish({ ok: false, reason: `no answer within ${options.timeoutMs} ms` }),
    options.timeoutMs,
  )
  socket.once('connect', () => finish({ ok: true }))
  socket.on('error', (err) => finish({ ok: false, reason: describeError(err) }))
  try {
    socket.connect({
      host: target.host,
      port: target.port,
      ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
    })
  } catch (err) {
    finish({ ok: false, reason: describeError(err) })
  }
  return { result: promise, cancel: () => finish({ ok: false, reason: 'cancelled', cancelled: true }) }
}

/**
 * A stable one-line reason (it goes into `details`, and a change of details is a write): Node's own
 * message, or the messages of every address tried when Happy Eyeballs tried several.
 */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return err.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join('; ')
  }
  if (err instanceof Error) return err.message || (err as NodeJS.ErrnoException).code || err.name
  return String(err)
}
