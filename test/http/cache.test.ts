import { afterEach, describe, expect, it } from 'vitest'
import { ResponseCache } from '../../src/http/response-cache.ts'
import { definition, instance, ownedStatus } from '../replica/fixtures.ts'
import { putNode, startServer, type TestServer } from './fixtures.ts'

const remote = (ts = Date.now()) => ({ ts, c: 0, node: 'node-r' })
const R_URL = 'http://127.0.0.9:11337'

describe('answers serialized once per change', () => {
  let s: TestServer
  afterEach(() => s.close())

  const ids = async (query: string) =>
    (await s.call('GET', `/registry-svc/instances?${query}`)).json.instances.map((i: { id: string }) => i.id)

  it('serves repeated lookups from cached bytes and sees a local write right after it', async () => {
    s = await startServer()
    await s.call('PUT', '/registry-svc/instance', {
      body: { id: 'i1', url: 'http://127.0.0.1:1', slug: 'a' },
    })
    expect(await ids('slug=a')).toEqual(['i1'])
    const hits = async () =>
      Number(
        /http_response_cache_total\{result="hit"\} (\d+)/.exec((await s.call('GET', '/metrics')).text)![1],
      )
    const before = await hits()
    expect(await ids('slug=a')).toEqual(['i1'])
    expect(await ids('slug=a')).toEqual(['i1'])
    expect(await hits()).toBe(before + 2)

    await s.call('PUT', '/registry-svc/instance', {
      body: { id: 'i2', url: 'http://127.0.0.2:1', slug: 'a' },
    })
    expect(await ids('slug=a')).toEqual(['i1', 'i2'])
    await s.call('DELETE', '/registry-svc/instance/i1')
    expect(await ids('slug=a')).toEqual(['i2'])
  })

  it('sees a remote change merged by replica.apply (gossip or anti-entropy)', async () => {
    s = await startServer()
    expect(await ids('slug=b')).toEqual([])
    expect((await s.call('GET', '/registry-svc/definitions')).json.definitions).toEqual([])

    await putNode(s.replica, { id: 'node-r', url: R_URL })
    const registration = remote()
    const r1 = instance('r1', 'b', { nodeUrl: R_URL })
    await s.replica.apply([{ kind: 'instance', id: 'r1', version: registration, value: r1 }], 'gossip')
    await s.replica.apply(
      [{ kind: 'definition', id: 'd1', version: remote(), value: definition('d1') }],
      'sync',
    )
    expect(await ids('slug=b')).toEqual(['r1'])
    expect(
      (await s.call('GET', '/registry-svc/definitions')).json.definitions.map((d: { id: string }) => d.id),
    ).toEqual(['d1'])

    // A remote status change (the owner's probe) shows at once.
    await s.replica.apply(
      [ownedStatus({ ...r1, status: 'Healthy' }, 'node-r', registration, Date.now() + 1)],
      'gossip',
    )
    expect(await ids('slug=b&status=Healthy')).toEqual(['r1'])
    await s.replica.apply(
      [{ kind: 'instance', id: 'r1', version: remote(Date.now() + 2), value: null }],
      'gossip',
    )
    expect(await ids('slug=b')).toEqual([])
  })

  it('keys the cache by the normalized query: parameter order and scheme case do not split it', async () => {
    s = await startServer()
    await s.call('PUT', '/registry-svc/instance', {
      body: { url: 'http://127.0.0.1:1/p', slug: 'a', tags: ['t'] },
    })
    const a = await s.call('GET', '/registry-svc/instances?slug=a&tag=t&scheme=HTTP&path=p')
    const b = await s.call('GET', '/registry-svc/instances?path=/p&scheme=http&tag=t&slug=a')
    expect(a.text).toBe(b.text)
    expect(a.json.instances).toHaveLength(1)
    const metrics = (await s.call('GET', '/metrics')).text
    expect(metrics).toMatch(/http_response_cache_total\{result="miss"\} 1\n/)
    expect(metrics).toMatch(/http_response_cache_total\{result="hit"\} 1\n/)
  })

  it('answers instances on an unreachable node as Unreachable, without writing, and back when it recovers', async () => {
    s = await startServer({ liveness: true })
    const liveness = s.liveness!
    await putNode(s.replica, { id: 'node-b', url: 'http://127.0.0.2:11337' })
    await putNode(s.replica, { id: 'node-c', url: 'http://127.0.0.3:11337' })
    const registered = { ts: Date.now() - 10, c: 0, node: 'node-x' }
    const healthyOn = (id: string, owner: string, nodeUrl: string) =>
      ownedStatus(instance(id, 'svc', { nodeUrl, status: 'Healthy' }), owner, registered, Date.now())
    await s.replica.apply(
      [
        healthyOn('on-b', 'node-b', 'http://127.0.0.2:11337'),
        healthyOn('elsewhere', 'node-c', 'http://127.0.0.3:11337'),
      ],
      'gossip',
    )
    liveness.set('node-b', 'alive')
    const status = async (query = 'slug=svc') =>
      Object.fromEntries(
        (await s.call('GET', `/registry-svc/instances?${query}`)).json.instances.map(
          (i: { id: string; status: string }) => [i.id, i.status],
        ),
      )
    expect(await status()).toEqual({ 'on-b': 'Healthy', elsewhere: 'Healthy' })

    const digest = s.replica.digest()
    liveness.set('node-b', 'suspect')
    expect(await status()).toEqual({ 'on-b': 'Healthy', elsewhere: 'Healthy' })
    liveness.set('node-b', 'unreachable')
    expect(await status()).toEqual({ 'on-b': 'Unreachable', elsewhere: 'Healthy' })
    expect(await status('status=Unreachable')).toEqual({ 'on-b': 'Unreachable' })
    expect(await status('status=Healthy')).toEqual({ elsewhere: 'Healthy' })
    expect(s.replica.get('instance', 'on-b')?.status).toBe('Healthy')
    expect(s.replica.digest()).toBe(digest)

    liveness.set('node-b', 'alive')
    expect(await status()).toEqual({ 'on-b': 'Healthy', elsewhere: 'Healthy' })
  })

  it('adds liveness to node answers and reports the later of record and last beat as lastHeartbeat', async () => {
    s = await startServer({ liveness: true })
    const liveness = s.liveness!
    const old = '2026-01-01T00:00:00.000Z'
    await putNode(s.replica, { id: 'node-b', url: 'http://127.0.0.2:11337', lastHeartbeat: old })
    await putNode(s.replica, { id: 'node-c', url: 'http://127.0.0.3:11337', lastHeartbeat: old })
    const beat = Date.parse('2026-01-01T00:05:00.000Z')
    liveness.seen.set('node-b', beat)
    liveness.seen.set('node-c', Date.parse('2025-12-31T00:00:00.000Z'))
    liveness.set('node-b', 'alive')
    liveness.set('node-c', 'unreachable')
    const nodes = (await s.call('POST', '/registry-svc/nodes', { body: { ids: ['node-b', 'node-c'] } })).json
      .nodes
    expect(nodes).toEqual([
      {
        id: 'node-b',
        url: 'http://127.0.0.2:11337',
        lastHeartbeat: new Date(beat).toISOString(),
        liveness: 'alive',
      },
      { id: 'node-c', url: 'http://127.0.0.3:11337', lastHeartbeat: old, liveness: 'unreachable' },
    ])
    // The stored record is untouched.
    expect(s.replica.get('node', 'node-b')?.lastHeartbeat).toBe(old)
  })
})

describe('ResponseCache', () => {
  const bytes = (n: number) => Buffer.alloc(n)

  it('keeps at most maxEntries answers, dropping the least recently used', () => {
    const cache = new ResponseCache({ maxEntries: 3 })
    for (const key of ['a', 'b', 'c']) cache.get(key, () => bytes(1))
    cache.get('a', () => bytes(1)) // a is now the most recent
    cache.get('d', () => bytes(1)) // evicts b
    let built = 0
    cache.get('b', () => {
      built++
      return bytes(1)
    })
    expect(built).toBe(1)
    expect(cache.size).toBe(3)
    expect(cache.hits).toBe(1)
  })

  it('bounds the bytes held, and does not keep an answer larger than the bound', () => {
    const cache = new ResponseCache({ maxEntries: 100, maxBytes: 1000 })
    for (let i = 0; i < 10; i++) cache.get(`k${i}`, () => bytes(300))
    expect(cache.bytes).toBeLessThanOrEqual(1000)
    expect(cache.size).toBe(3)
    cache.get('huge', () => bytes(5000))
    expect(cache.size).toBe(3)
    expect(cache.bytes).toBe(900)
  })

  it('holds memory flat under a flood of distinct queries', async () => {
    const s = await startServer({ init: { responseCache: { maxEntries: 50 } } })
    try {
      for (let i = 0; i < 300; i++) await s.app.inject({ url: `/registry-svc/instances?slug=s${i}` })
      const metrics = (await s.call('GET', '/metrics')).text
      expect(metrics).toMatch(/http_response_cache_total\{result="miss"\} 300\n/)
      expect(Number(/http_response_cache_bytes (\d+)/.exec(metrics)![1])).toBe(50 * '{"instances":[]}'.length)
    } finally {
      await s.close()
    }
  })
})
