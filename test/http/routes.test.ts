import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Instance, instanceIdForUrl } from '../../src/model/index.ts'
import { NODE_ID, putNode, SELF_URL, startServer, type TestServer } from './fixtures.ts'

/** The two short-form examples of 1Backend's docs, as JSON bodies. */
const TEST_A = { id: 'test-a', image: { name: 'hashicorp/http-echo', port: 8080 }, hostPort: 8887 }
const TEST_B = {
  id: 'test-b',
  repository: { url: 'https://github.com/1backend/1backend.git', containerFile: 'server/docker/Dockerfile' },
  hostPort: 9998,
}

describe('definitions', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startServer()
  })
  afterAll(() => s.close())

  it('saves both short-form examples of the 1Backend docs and lists them in normal form', async () => {
    expect(await s.call('PUT', '/registry-svc/definition', { body: { definition: TEST_A } })).toMatchObject({
      status: 201,
      json: {},
    })
    expect((await s.call('PUT', '/registry-svc/definition', { body: { definition: TEST_B } })).status).toBe(
      201,
    )
    const list = await s.call('GET', '/registry-svc/definitions')
    expect(list.status).toBe(200)
    expect(list.headers.get('content-type')).toMatch(/^application\/json/)
    expect(list.json).toEqual({
      definitions: [
        {
          id: 'test-a',
          image: { name: 'hashicorp/http-echo', internalPorts: [8080] },
          ports: [{ internal: 8080, host: 8887 }],
        },
        {
          id: 'test-b',
          repository: {
            url: 'https://github.com/1backend/1backend.git',
            containerFile: 'server/docker/Dockerfile',
            internalPorts: [9998],
          },
          ports: [{ internal: 9998, host: 9998 }],
        },
      ],
    })
  })

  it('saves the normal form as is, overwrites by id, and deletes (404 once gone)', async () => {
    const normal = {
      id: 'test-c',
      image: { name: 'nginx:1.27', internalPorts: [80, 443] },
      apiSpecs: [{ url: 'http://x/openapi.json', protocolType: 'OpenAPI', metadata: { b: '2', a: '1' } }],
      clients: [{ language: 'go', url: 'https://example.com/client' }],
      envars: [{ key: 'MODE', value: 'prod' }],
      ports: [{ internal: 80, host: 8080 }],
    }
    expect((await s.call('PUT', '/registry-svc/definition', { body: { definition: normal } })).status).toBe(
      201,
    )
    expect(s.replica.get('definition', 'test-c')).toEqual({
      ...normal,
      apiSpecs: [{ url: 'http://x/openapi.json', protocolType: 'OpenAPI', metadata: { a: '1', b: '2' } }],
    })
    const changed = { id: 'test-c', image: { name: 'nginx:1.28', internalPorts: [80] } }
    expect((await s.call('PUT', '/registry-svc/definition', { body: { definition: changed } })).status).toBe(
      201,
    )
    expect((await s.call('GET', '/registry-svc/definitions')).json.definitions[2]).toEqual(changed)

    const deleted = await s.call('DELETE', '/registry-svc/definition/test-c')
    expect(deleted).toMatchObject({ status: 204, text: '' })
    expect(
      (await s.call('GET', '/registry-svc/definitions')).json.definitions.map((d: { id: string }) => d.id),
    ).toEqual(['test-a', 'test-b'])
    expect(await s.call('DELETE', '/registry-svc/definition/test-c')).toMatchObject({
      status: 404,
      json: { error: 'definition "test-c" not found' },
    })
  })
})

describe('instances', () => {
  let s: TestServer
  const ids: Record<string, string> = {}
  const register = async (name: string, body: Record<string, unknown>) => {
    const answer = await s.call('PUT', '/registry-svc/instance', { body })
    expect(answer.status, answer.text).toBe(201)
    ids[name] = answer.json.instance.id
    return answer.json.instance as Instance
  }

  beforeAll(async () => {
    s = await startServer()
    await register('i1', {
      url: 'http://127.0.0.1:8080/api',
      slug: 'user-svc',
      deploymentId: 'depl-1',
      tags: ['blue'],
    })
    await register('i2', { url: 'https://svc.example.com:8443', slug: 'user-svc', tags: ['green'] })
    await register('i3', {
      scheme: 'grpc',
      ip: '127.0.0.3',
      port: 9000,
      slug: 'billing-svc',
      deploymentId: 'depl-1',
      tags: ['blue', 'green'],
      nodeUrl: 'http://127.9.9.9:11337',
    })
    await register('i4', { scheme: 'http', host: 'h.example', port: 80, path: 'x', slug: 'billing-svc' })
    // The owner's health probe (this agent, once its record is written) marks one Healthy.
    await putNode(s.replica, { id: NODE_ID, url: SELF_URL })
    const i2 = s.replica.get('instance', ids.i2!)!
    await s.replica.putStatus({ ...i2, status: 'Healthy' })
  })
  afterAll(() => s.close())

  it('normalises a registration: id from the URL, url from parts, nodeUrl defaults to this agent, status Unknown', async () => {
    const i1 = s.replica.get('instance', ids.i1!)!
    expect(i1).toMatchObject({
      id: instanceIdForUrl('http://127.0.0.1:8080/api'),
      url: 'http://127.0.0.1:8080/api',
      scheme: 'http',
      ip: '127.0.0.1',
      port: 8080,
      path: '/api',
      nodeUrl: SELF_URL,
      status: 'Unknown',
    })
    expect(Date.now() - Date.parse(i1.lastHeartbeat!)).toBeLessThan(60_000)
    expect(s.replica.get('instance', ids.i3!)).toMatchObject({
      url: 'grpc://127.0.0.3:9000',
      nodeUrl: 'http://127.9.9.9:11337',
    })
    expect(s.replica.get('instance', ids.i4!)).toMatchObject({
      url: 'http://h.example:80/x',
      host: 'h.example',
      path: '/x',
    })
  })

  it('registers the same URL twice as one instance with the same id, keeping its probed status', async () => {
    const before = s.replica.counts().instances
    const first = await register('again', {
      url: 'https://svc.example.com:8443',
      slug: 'user-svc',
      tags: ['green'],
    })
    expect(first.id).toBe(ids.i2)
    expect(first.status).toBe('Healthy')
    // Another spelling of the same address: default port, upper-case host, trailing slash.
    const second = await register('again', {
      url: 'https://SVC.example.com:8443/',
      slug: 'user-svc',
      tags: ['green'],
    })
    expect(second.id).toBe(ids.i2)
    expect(s.replica.counts().instances).toBe(before)
    const listed = await s.call('GET', `/registry-svc/instances?id=${ids.i2}`)
    expect(listed.json.instances).toHaveLength(1)
  })

  const cases: Array<[string, string[]]> = [
    ['', ['i1', 'i2', 'i3', 'i4']],
    ['slug=user-svc', ['i1', 'i2']],
    ['slug=billing-svc', ['i3', 'i4']],
    ['slug=nope', []],
    ['id=ID:i3', ['i3']],
    ['id=inst_0000000000000000', []],
    ['host=svc.example.com', ['i2']],
    ['host=h.example', ['i4']],
    ['ip=127.0.0.1', ['i1']],
    ['ip=127.0.0.3', ['i3']],
    ['scheme=grpc', ['i3']],
    ['scheme=HTTP', ['i1', 'i4']],
    ['scheme=https', ['i2']],
    ['path=/api', ['i1']],
    ['path=api', ['i1']],
    ['path=%2Fx', ['i4']],
    ['path=/', ['i2', 'i3']],
    ['deploymentId=depl-1', ['i1', 'i3']],
    ['tag=blue', ['i1', 'i3']],
    ['tag=green', ['i2', 'i3']],
    ['tag=red', []],
    ['status=Healthy', ['i2']],
    ['status=Unknown', ['i1', 'i3', 'i4']],
    ['status=Error', []],
    ['url=http://127.0.0.1:8080/api', ['i1']],
    // combined: every filter must match
    ['slug=user-svc&tag=blue', ['i1']],
    ['slug=user-svc&tag=green&status=Healthy', ['i2']],
    ['slug=user-svc&status=Unknown', ['i1']],
    ['deploymentId=depl-1&scheme=grpc', ['i3']],
    ['deploymentId=depl-1&tag=green&slug=billing-svc', ['i3']],
    ['tag=blue&ip=127.0.0.1', ['i1']],
    ['host=h.example&path=/x&scheme=http&slug=billing-svc&status=Unknown', ['i4']],
    ['slug=billing-svc&host=svc.example.com', []],
    ['id=ID:i1&slug=billing-svc', []],
    [
      'id=ID:i1&slug=user-svc&ip=127.0.0.1&scheme=http&path=/api&deploymentId=depl-1&tag=blue&status=Unknown',
      ['i1'],
    ],
  ]
  it.each(cases)('GET /registry-svc/instances?%s', async (query, expected) => {
    const q = query.replace(/ID:(i\d)/g, (_, name: string) => ids[name]!)
    const answer = await s.call('GET', `/registry-svc/instances${q === '' ? '' : `?${q}`}`)
    expect(answer.status, answer.text).toBe(200)
    const want = expected.map((name) => ids[name]!).sort()
    expect(answer.json.instances.map((i: Instance) => i.id)).toEqual(want)
    // Each listed instance is the stored record.
    for (const i of answer.json.instances) expect(i).toEqual(s.replica.get('instance', i.id))
  })

  it('removes an instance (204), then answers 404 for it', async () => {
    const { id } = await register('gone', { url: 'tcp://127.7.0.1:5432', slug: 'db' })
    expect(await s.call('DELETE', `/registry-svc/instance/${id}`)).toMatchObject({ status: 204, text: '' })
    expect((await s.call('GET', '/registry-svc/instances?slug=db')).json).toEqual({ instances: [] })
    expect(await s.call('DELETE', `/registry-svc/instance/${id}`)).toMatchObject({
      status: 404,
      json: { error: `instance "${id}" not found` },
    })
  })
})

describe('nodes and operations', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startServer()
  })
  afterAll(() => s.close())

  it('answers node/self from the fallback before the first heartbeat, then from the record', async () => {
    expect((await s.call('GET', '/registry-svc/node/self')).json).toEqual({
      node: { id: NODE_ID, url: SELF_URL },
    })
    const record = await putNode(s.replica, { id: NODE_ID, url: SELF_URL, region: 'eu', peerId: '12D3Koo' })
    expect((await s.call('GET', '/registry-svc/node/self')).json).toEqual({ node: record })
  })

  it('lists nodes with POST /registry-svc/nodes: no body, {}, or {"ids": [...]}', async () => {
    const b = await putNode(s.replica, { id: 'node-b', url: 'http://127.0.0.2:11337' })
    const c = await putNode(s.replica, {
      id: 'node-c',
      url: 'http://127.0.0.3:11337',
      gpus: [{ id: 'g0', name: 'A100' }],
    })
    const all = [NODE_ID, 'node-b', 'node-c']
    const ids = (answer: { json: { nodes: Array<{ id: string }> } }) => answer.json.nodes.map((n) => n.id)
    expect(ids(await s.call('POST', '/registry-svc/nodes'))).toEqual(all)
    expect(
      ids(
        await s.call('POST', '/registry-svc/nodes', {
          body: '',
          headers: { 'content-type': 'application/json' },
        }),
      ),
    ).toEqual(all)
    expect(ids(await s.call('POST', '/registry-svc/nodes', { body: {} }))).toEqual(all)
    expect(ids(await s.call('POST', '/registry-svc/nodes', { body: { ids: [] } }))).toEqual(all)
    const some = await s.call('POST', '/registry-svc/nodes', { body: { ids: ['node-c', 'node-b', 'nope'] } })
    expect(some.json).toEqual({ nodes: [b, c] }) // extra fields (gpus, peerId) answered as stored
  })

  it('deletes a node by its path-escaped URL or by id, 404 for an unknown one', async () => {
    await putNode(s.replica, { id: 'node-d', url: 'http://127.0.0.4:11337/agent' })
    await putNode(s.replica, { id: 'node-e', url: 'http://127.0.0.5:11337' })
    const escaped = encodeURIComponent('http://127.0.0.4:11337/agent')
    expect((await s.call('DELETE', `/registry-svc/node/${escaped}`)).status).toBe(204)
    expect(s.replica.get('node', 'node-d')).toBeUndefined()
    expect((await s.call('DELETE', '/registry-svc/node/node-e')).status).toBe(204)
    expect(s.replica.get('node', 'node-e')).toBeUndefined()
    expect(await s.call('DELETE', `/registry-svc/node/${escaped}`)).toMatchObject({
      status: 404,
      json: { error: 'node "http://127.0.0.4:11337/agent" not found' },
    })
  })

  it('GET /healthz answers ok with the node id, replica digest and counts', async () => {
    const answer = await s.call('GET', '/healthz')
    expect(answer.status).toBe(200)
    expect(answer.json).toEqual({
      status: 'ok',
      nodeId: NODE_ID,
      digest: s.replica.digest(),
      ...s.replica.counts(),
      peers: 0,
    })
  })

  it('answers an unknown path 404 and a known path with another method 405 with Allow', async () => {
    expect(await s.call('GET', '/registry-svc/nope')).toMatchObject({
      status: 404,
      json: { error: 'no route GET /registry-svc/nope' },
    })
    const wrong = await s.call('PATCH', '/registry-svc/instance')
    expect(wrong).toMatchObject({
      status: 405,
      json: { error: expect.stringContaining('PATCH is not allowed') },
    })
    expect(wrong.headers.get('allow')).toBe('PUT')
    expect((await s.call('GET', '/registry-svc/definition/x')).headers.get('allow')).toBe('DELETE')
  })

  it('logs one structured line per request through the given logger', async () => {
    await s.call('DELETE', '/registry-svc/definition/not-there')
    const line = s.logs.find((l) => l.msg === 'request' && l.url === '/registry-svc/definition/not-there')
    expect(line).toMatchObject({
      level: 30,
      method: 'DELETE',
      route: '/registry-svc/definition/:id',
      statusCode: 404,
      code: 'not-found',
      reqId: expect.any(String),
    })
  })
})
