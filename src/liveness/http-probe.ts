import { type ClientRequest, request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { LookupFunction } from 'node:net'
import type { Instance } from '../model/index.ts'
import { describeError } from './tcp-probe.ts'

/** What an http check found: the answer's status code, or why there was none. */
export type HttpProbeResult =
  | { ok: true; ms: number; statusCode: number }
  | { ok: false; ms: number; reason: string; cancelled?: true }

export interface HttpProbeOptions {
  timeoutMs: number
  /** Monotonic ms clock that times the request. */
  now: () => number
  /** Host name resolution (`dns.lookup` when absent); the probe networks filter it. */
  lookup?: LookupFunction | undefined
}

export interface HttpProbe {
  readonly result: Promise<HttpProbeResult>
  cancel(): void
}

/**
 * The URL an http check GETs: the instance URL with the check's `path` joined to its own path
 * (`http://h:8080/api` + `/health` → `http://h:8080/api/health`), or `{ problem }` for a scheme that
 * is not http or https.
 */
export function checkUrlOf(instance: Instance, path: string | undefined): URL | { problem: string } {
  const url = URL.parse(instance.url)
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    return { problem: `cannot check over http: ${instance.url} is not an http or https URL` }
  }
  if (path !== undefined && path !== '') {
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`
  }
  return url
}

/**
 * One `GET` with a deadline covering resolution, connect and the answer's head. The body is not read
 * (the socket is destroyed once the status line is in); redirects are not followed (a 3xx is an
 * answer like any other). `result` always resolves, once the socket is gone.
 */
export function httpProbe(url: URL, options: HttpProbeOptions): HttpProbe {
  const { promise, resolve } = Promise.withResolvers<HttpProbeResult>()
  const started = options.now()
  let done = false
  let req: ClientRequest | undefined
  const finish = (
    outcome: { ok: true; statusCode: number } | { ok: false; reason: string; cancelled?: true },
  ) => {
    if (done) return
    done = true
    clearTimeout(timer)
    const result = { ...outcome, ms: Math.max(0, options.now() - started) } as HttpProbeResult
    const socket = req?.socket
    if (socket && !socket.destroyed) socket.once('close', () => resolve(result))
    else resolve(result)
    req?.destroy()
  }
  const timer = setTimeout(
    () => finish({ ok: false, reason: `no answer within ${options.timeoutMs} ms` }),
    options.timeoutMs,
  )
  try {
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest
    req = request(url, {
      method: 'GET',
      agent: false,
      headers: { 'user-agent': 'p2p-registry-check', connection: 'close' },
      ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
    })
    req.once('response', (res) => {
      res.resume()
      finish({ ok: true, statusCode: res.statusCode ?? 0 })
    })
    req.on('error', (err) => finish({ ok: false, reason: describeError(err) }))
    req.end()
  } catch (err) {
    finish({ ok: false, reason: describeError(err) })
  }
  return { result: promise, cancel: () => finish({ ok: false, reason: 'cancelled', cancelled: true }) }
}
