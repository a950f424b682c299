import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { instanceIdForUrl } from '../../src/model/index.ts'
import { type CallOptions, putNode, snapshot, startServer, type TestServer } from './fixtures.ts'

const TOKEN = 'test-token-0123456789'
const INSTANCE_URL = 'http://127.0.0.1:8080'
const INSTANCE_ID = instanceIdForUrl(INSTANCE_URL)

/** Every mutating route, with a request that succeeds when authorized. */
const MUTATING: Array<{ method: string; path: string; options?: CallOptions; ok: number }> = [
  {
    method: 'PUT',
    path: '/registry-svc/definition',
    options: { body: { definition: { id: 'd2', image: { name: 'x' } } } },
    ok: 201,
  },
  {
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: { url: 'http://127.0.0.2:8080', slug: 's' } },
    ok: 201,
  },
  { method: 'DELETE', path: '/registry-svc/definition/d1', ok: 204 },
  { method: 'DELETE', path: `/registry-svc/instance/${INSTANCE_ID}`, ok: 204 },
  { method: 'DELETE', path: `/registry-svc/node/${encodeURIComponent('http://127.0.0.9:11337')}`, ok: 204 },
]

const WRONG_HEADERS: Array<[string, Record<string, string>, RegExp]> = [
  ['no Authorization header', {}, /needs an Authorization: Bearer <token> header/],
  ['a wrong token', { authorization: 'Bearer not-the-token' }, /^the API token is not valid$/],
  [
    'a token that is a prefix of the right one',
    { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
    /not valid/,
  ],
  ['the right token with another scheme', { authorization: `Basic ${TOKEN}` }, /must be "Bearer <token>"/],
  ['an empty bearer', { authorization: 'Bearer ' }, /must be "Bearer <token>"/],
]

describe('API token', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startServer({ init: { apiToken: TOKEN } })
    const auth = { authorization: `Bearer ${TOKEN}` }
    await s.call('PUT', '/registry-svc/definition', {
      body: { definition: { id: 'd1', image: { name: 'x' } } },
      headers: auth,
    })
    await s.call('PUT', '/registry-svc/instance', { body: { url: INSTANCE_URL, slug: 's' }, headers: auth })
    await putNode(s.replica, { id: 'node-z', url: 'http://127.0.0.9:11337' })
  })
  afterAll(() => s.close())

  for (const route of MUTATING) {
    it.each(
      WRONG_HEADERS,
    )(`${route.method} ${route.path}: 401 with %s, nothing changed`, async (_, headers, error) => {
      const before = snapshot(s.replica)
      const answer = await s.call(route.method, route.path, {
        ...route.options,
        headers: { ...route.options?.headers, ...headers },
      })
      expect(answer.status).toBe(401)
      expect(answer.json).toEqual({ error: expect.stringMatching(error) })
      expect(answer.headers.get('www-authenticate')).toBe('Bearer')
      expect(snapshot(s.replica)).toEqual(before)
    })
  }

  it('checks the token before reading the body (401, not 413, for a huge unauthorized body)', async () => {
    const answer = await s.call('PUT', '/registry-svc/definition', {
      body: 'x'.repeat(4 * 1024 * 1024),
      headers: { 'content-type': 'application/json' },
    })
    expect(answer.status).toBe(401)
  })

  it('keeps reads open: lists, node list (a POST), self, health, metrics, OpenAPI', async () => {
    expect((await s.call('GET', '/registry-svc/definitions')).status).toBe(200)
    expect((await s.call('GET', '/registry-svc/instances?slug=s')).json.instances).toHaveLength(1)
    expect(
      (await s.call('POST', '/registry-svc/nodes', { body: { ids: ['node-z'] } })).json.nodes,
    ).toHaveLength(1)
    expect((await s.call('GET', '/registry-svc/node/self')).status).toBe(200)
    expect((await s.call('GET', '/healthz')).status).toBe(200)
    expect((await s.call('GET', '/metrics')).status).toBe(200)
    expect((await s.call('GET', '/openapi.json')).status).toBe(200)
  })

  it.each(MUTATING)('$method $path succeeds with the token', async ({ method, path, options, ok }) => {
    const answer = await s.call(method, path, {
      ...options,
      headers: { authorization: `bearer  ${TOKEN}` }, // scheme case-insensitive, extra blanks allowed
    })
    expect(answer.status, answer.text).toBe(ok)
  })

  it('without a configured token, mutating requests need none', async () => {
    const open = await startServer()
    try {
      const answer = await open.call('PUT', '/registry-svc/definition', {
        body: { definition: { id: 'd', image: { name: 'x' } } },
      })
      expect(answer.status).toBe(201)
    } finally {
      await open.close()
    }
  })
})
