/**
 * A client cannot hold the HTTP port: slow headers (slowloris), a slow body, idle keep-alive
 * connections and more connections than the cap are all closed by the agent, while other clients are
 * served. Tight limits here so the test is quick; the defaults are in DEFAULT_HTTP_LIMITS.
 */
import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '../support/wait.ts'
import { startServer, type TestServer } from './fixtures.ts'

const LIMITS = {
  headersTimeoutMs: 600,
  requestTimeoutMs: 1_000,
  keepAliveTimeoutMs: 400,
  checkIntervalMs: 100,
  maxConnections: 30,
}

let s: TestServer | undefined
const sockets: Socket[] = []
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  await s?.close()
  s = undefined
})

interface Watched {
  socket: Socket
  closedAt?: number
  received: string
}

async function open(url: string): Promise<Watched> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  sockets.push(socket)
  const watched: Watched = { socket, received: '' }
  socket.on('data', (chunk) => {
    watched.received += chunk
  })
  socket.on('close', () => {
    watched.closedAt = Date.now()
  })
  socket.on('error', () => undefined)
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return watched
}

describe('HTTP limits', () => {
  it('closes slowloris connections that trickle their headers, and keeps serving others', async () => {
    s = await startServer({ init: { limits: LIMITS } })
    const started = Date.now()
    const slow = await Promise.all(Array.from({ length: 20 }, () => open(s!.url)))
    for (const { socket } of slow) socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n')
    const trickle = setInterval(() => {
      for (const { socket } of slow) if (!socket.destroyed) socket.write('X-A: b\r\n')
    }, 100)
    try {
      expect((await s.call('GET', '/healthz')).status).toBe(200)
      await waitFor('every slowloris connection closed', () => slow.every((w) => w.closedAt !== undefined), {
        timeoutMs: 5_000,
      })
    } finally {
      clearInterval(trickle)
    }
    const latest = Math.max(...slow.map((w) => w.closedAt!)) - started
    expect(latest).toBeLessThan(LIMITS.headersTimeoutMs + 4 * LIMITS.checkIntervalMs + 500)
    expect(slow[0]!.received).toMatch(/^HTTP\/1\.1 408/)
  })

  it('closes a request whose body trickles in past the request timeout', async () => {
    s = await startServer({ init: { limits: LIMITS } })
    const w = await open(s.url)
    w.socket.write(
      'PUT /registry-svc/definition HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{',
    )
    const trickle = setInterval(() => !w.socket.destroyed && w.socket.write(' '), 100)
    try {
      await waitFor('the slow-body connection closed', () => w.closedAt !== undefined, { timeoutMs: 5_000 })
    } finally {
      clearInterval(trickle)
    }
    expect(await s.replica.definitions()).toEqual([])
  })

  it('closes an idle keep-alive connection', async () => {
    s = await startServer({ init: { limits: LIMITS } })
    const w = await open(s.url)
    w.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    await waitFor('an answer', () => w.received.includes('\r\n\r\n'))
    expect(w.received).toMatch(/^HTTP\/1\.1 200/)
    const answered = Date.now()
    await waitFor('the idle connection closed', () => w.closedAt !== undefined, { timeoutMs: 5_000 })
    expect(w.closedAt! - answered).toBeLessThan(LIMITS.keepAliveTimeoutMs + 1_000)
  })

  it('refuses connections past the cap, and serves again once they are gone', async () => {
    s = await startServer({ init: { limits: LIMITS } })
    const held = await Promise.all(Array.from({ length: LIMITS.maxConnections }, () => open(s!.url)))
    const extra = await Promise.all(Array.from({ length: 5 }, () => open(s!.url)))
    await waitFor('the connections past the cap closed', () => extra.every((w) => w.closedAt !== undefined))
    expect(held.filter((w) => w.closedAt !== undefined).length).toBeLessThan(LIMITS.maxConnections)
    for (const { socket } of held) socket.destroy()
    await waitFor(
      'served again',
      async () => (await s!.call('GET', '/healthz').catch(() => ({ status: 0 }))).status === 200,
    )
  })
})
