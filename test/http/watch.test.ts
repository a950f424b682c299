/**
 * Watch streams (Server-Sent Events) and blocking queries against a real agent app on loopback, read
 * with a spec-compliant SSE parser over fetch.
 */
import { connect } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '../support/wait.ts'
import { NODE_ID, putNode, SELF_URL, startServer, type TestServer } from './fixtures.ts'

let s: TestServer
const streams: AbortController[] = []
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.abort()
  await s?.close()
})

/** Opens a watch; `events` fills as they arrive. */
async function watch(path: string, headers: Record<string, string> = {}) {
  const controller = new AbortController()
  streams.push(controller)
  const response = await fetch(`${s.url}${path}`, { headers, signal: controller.signal })
  const events: EventSourceMessage[] = []
  const parser = createParser({ onEvent: (event) => events.push(event) })
  if (response.ok) {
    void (async () => {
      const decoder = new TextDecoder()
      try {
        for await (const chunk of response.body!)
          parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }))
      } catch {
        // aborted
      }
    })()
  }
  const ids = (n: number) =>
    (JSON.parse(events[n]!.data) as { instances: Array<{ id: string }> }).instances.map((i) => i.id)
  return { response, events, ids }
}

const register = (id: string, slug: string) =>
  s.call('PUT', '/registry-svc/instance', {
    body: { id, url: `http://127.0.0.1:${9000 + Number(id.replace(/\D/g, ''))}`, slug },
  })

describe('GET /registry-svc/instances/watch', () => {
  it('sends the answer at once, then one event per change of it: a write, a status change, a delete; nothing for other slugs', async () => {
    s = await startServer()
    await register('a1', 'a')
    const w = await watch('/registry-svc/instances/watch?slug=a')
    expect(w.response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    await waitFor('the first event', () => w.events.length === 1)
    expect(w.events[0]).toMatchObject({ event: 'instances' })
    expect(w.ids(0)).toEqual(['a1'])
    await register('b1', 'b')
    await register('a2', 'a')
    await waitFor('the write of a2', () => w.events.length === 2)
    expect(w.ids(1)).toEqual(['a1', 'a2'])
    // A status change by the owner (this agent, once its record is written).
    await putNode(s.replica, { id: NODE_ID, url: SELF_URL })
    await waitFor('an event only if the answer changed', async () => {
      await s.replica.putStatus({ ...s.replica.get('instance', 'a1')!, status: 'Healthy' })
      return w.events.length === 3
    })
    expect(
      (JSON.parse(w.events[2]!.data) as { instances: Array<{ status: string }> }).instances[0]!.status,
    ).toBe('Healthy')
    await s.call('DELETE', '/registry-svc/instance/a1')
    await waitFor('the delete', () => w.events.length === 4)
    expect(w.ids(3)).toEqual(['a2'])
    // Event ids are increasing indexes, the same as the list's X-Registry-Index.
    const ids = w.events.map((e) => Number(e.id))
    expect(ids).toEqual([...ids].sort((x, y) => x - y))
    const list = await s.call('GET', '/registry-svc/instances?slug=a')
    expect(list.headers.get('x-registry-index')).toBe(w.events[3]!.id)
    expect(w.events.every((e) => e.event === 'instances')).toBe(true)
  })

  it('resumes from Last-Event-ID: nothing until the answer changes from that index', async () => {
    s = await startServer()
    await register('a1', 'a')
    const first = await watch('/registry-svc/instances/watch?slug=a')
    await waitFor('the first event', () => first.events.length === 1)
    const resumed = await watch('/registry-svc/instances/watch?slug=a', {
      'last-event-id': first.events[0]!.id!,
    })
    await register('b1', 'b')
    await register('a2', 'a')
    await waitFor('the change on both', () => first.events.length === 2 && resumed.events.length === 1)
    expect(resumed.ids(0)).toEqual(['a1', 'a2'])
  })

  it('refuses a watch past OB_MAX_WATCHERS with 503 and Retry-After', async () => {
    s = await startServer({ init: { maxWatchers: 2 } })
    await watch('/registry-svc/instances/watch')
    await watch('/registry-svc/nodes/watch')
    const third = await watch('/registry-svc/instances/watch')
    expect(third.response.status).toBe(503)
    expect(third.response.headers.get('retry-after')).toBe('5')
    expect(await third.response.json()).toEqual({
      error: 'this agent holds 2 watches and blocking queries, its limit; try again shortly or poll',
    })
  })

  it('costs one pending answer for a client that stops reading, however many changes come', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const memory = () => {
      gc()
      const m = process.memoryUsage()
      return m.heapUsed + m.arrayBuffers
    }
    s = await startServer()
    for (let i = 0; i < 300; i++) await register(`seed${i}`, 'big')
    // A raw client that sends the request and never reads a byte.
    const { port } = new URL(s.url)
    const socket = connect(Number(port), '127.0.0.1')
    socket.write('GET /registry-svc/instances/watch?slug=big HTTP/1.1\r\nHost: x\r\n\r\n')
    socket.pause()
    const before = memory()
    // 1,000 writes, each changing the watched answer (about 60 KB each): 60 MB if they queued.
    for (let i = 0; i < 1000; i++) await register(`more${i}`, 'big')
    const grown = (memory() - before) / 2 ** 20
    console.info(`[watch] memory grown under 1,000 changes with a stalled watcher: ${grown.toFixed(1)} MB`)
    expect(grown).toBeLessThan(20)
    socket.destroy()
  }, 60_000)
})

describe('blocking queries', () => {
  it('answer at once on a stale index, after the change otherwise, and after wait when nothing changes', async () => {
    s = await startServer()
    await register('a1', 'a')
    const first = await s.call('GET', '/registry-svc/instances?slug=a')
    const index = first.headers.get('x-registry-index')!
    expect(Number(index)).toBeGreaterThan(0)
    expect(
      (await s.call('GET', `/registry-svc/instances?slug=a&index=${Number(index) - 1}`)).json.instances,
    ).toHaveLength(1)

    const started = Date.now()
    const quiet = await s.call('GET', `/registry-svc/instances?slug=a&index=${index}&wait=300ms`)
    expect(Date.now() - started).toBeGreaterThanOrEqual(300)
    expect(quiet.headers.get('x-registry-index')).toBe(index)

    const blocked = s.call('GET', `/registry-svc/instances?slug=a&index=${index}&wait=30s`)
    await register('b1', 'b') // another slug: still blocked
    await register('a2', 'a')
    const changed = await blocked
    expect(changed.json.instances.map((i: { id: string }) => i.id)).toEqual(['a1', 'a2'])
    expect(Number(changed.headers.get('x-registry-index'))).toBeGreaterThan(Number(index))
  })

  it('names a bad wait or a wait without index', async () => {
    s = await startServer()
    expect((await s.call('GET', '/registry-svc/instances?index=1&wait=soon')).json).toEqual({
      error: 'query parameter "wait" must be a duration such as 30s or 5m',
    })
    expect((await s.call('GET', '/registry-svc/instances?wait=5s')).status).toBe(400)
  })
})

describe('GET /registry-svc/nodes/watch', () => {
  it('sends the node list, and again when a record changes', async () => {
    s = await startServer()
    const w = await watch('/registry-svc/nodes/watch')
    await waitFor('the first event', () => w.events.length === 1)
    expect(JSON.parse(w.events[0]!.data)).toEqual({ nodes: [] })
    await putNode(s.replica, { id: 'node-b', url: 'http://127.0.0.2:11337' })
    await waitFor('the new node', () => w.events.length === 2)
    expect(w.events[1]).toMatchObject({ event: 'nodes' })
    expect(
      (JSON.parse(w.events[1]!.data) as { nodes: Array<{ id: string }> }).nodes.map((n) => n.id),
    ).toEqual(['node-b'])
  })
})

describe('GET /registry-svc/services and the services and definitions watches', () => {
  it('counts instances by slug and status, and streams the summary and the definitions as they change', async () => {
    s = await startServer()
    await register('a1', 'alpha')
    await register('a2', 'alpha')
    await register('b1', 'beta')
    const listed = await s.call('GET', '/registry-svc/services')
    expect(listed.json).toEqual({
      services: [
        { slug: 'alpha', instances: 2, statuses: { Unknown: 2 } },
        { slug: 'beta', instances: 1, statuses: { Unknown: 1 } },
      ],
    })
    const services = await watch('/registry-svc/services/watch')
    const definitions = await watch('/registry-svc/definitions/watch')
    await waitFor('both first events', () => services.events.length === 1 && definitions.events.length === 1)
    expect(services.events[0]!.event).toBe('services')
    await register('c1', 'gamma')
    await waitFor('the summary with gamma', () => services.events.at(-1)?.data.includes('"gamma"') === true)
    await s.call('PUT', '/registry-svc/definition', {
      body: { definition: { id: 'web', image: { name: 'nginx', port: 80 } } },
    })
    await waitFor('the definition', () => definitions.events.at(-1)?.data.includes('"web"') === true)
    expect(definitions.events.map((e) => e.event)).toEqual(['definitions', 'definitions'])
  })
})
