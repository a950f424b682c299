import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { putNode, snapshot, startServer, type TestServer } from './fixtures.ts'

const TOKEN = 'fuzz-token'

const PATHS = [
  '/registry-svc/definition',
  '/registry-svc/definitions',
  '/registry-svc/definition/',
  '/registry-svc/instance',
  '/registry-svc/instances',
  '/registry-svc/instance/',
  '/registry-svc/nodes',
  '/registry-svc/node/self',
  '/registry-svc/node/',
  '/healthz',
  '/metrics',
  '/openapi.json',
]

/** Path segments: ids, escaped and raw oddities, control characters, long strings, broken escapes. */
const segment = fc.oneof(
  fc.constantFrom(
    '',
    'def-1',
    'i1',
    'node-b',
    'self',
    '%2F',
    '%00',
    '%ZZ',
    '..',
    '%',
    'a%2Fb',
    'x'.repeat(3000),
  ),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.string({ unit: 'binary', maxLength: 20 }).map(encodeURIComponent),
  fc.webUrl().map(encodeURIComponent),
)

const QUERY_KEYS = ['id', 'slug', 'url', 'host', 'ip', 'scheme', 'path', 'deploymentId', 'tag', 'status']
const queryValue = fc.oneof(
  fc.constantFrom('user-svc', 'Healthy', 'Unknown', 'http', '127.0.0.1', '/api', '', 'a b', '%00'),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 10 }),
)
const query = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom(...QUERY_KEYS),
        fc.constantFrom('slug[]', 'limit', '__proto__', 'constructor'),
        fc.string({ maxLength: 8 }),
      ),
      fc.oneof(queryValue, fc.array(queryValue, { minLength: 2, maxLength: 3 })),
    ),
    { maxLength: 4 },
  )
  .map((pairs) =>
    pairs
      .flatMap(([k, v]) =>
        (Array.isArray(v) ? v : [v]).map((x) => `${encodeURIComponent(k)}=${encodeURIComponent(x)}`),
      )
      .join('&'),
  )

/** Bodies close to valid ones (so they reach the model's checks) and arbitrary JSON and bytes. */
const anyValue = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 2 }),
)
const instanceBody = fc.record(
  {
    id: fc.oneof(fc.constantFrom('i1', 'a/b', ''), anyValue),
    url: fc.oneof(
      fc.webUrl(),
      fc.constantFrom('http://[::1]:80', 'grpc://h:0', 'x:', 'http://a:99999', '//a'),
      anyValue,
    ),
    scheme: fc.oneof(fc.constantFrom('http', 'HTTP', 'grpc', '1x'), anyValue),
    host: fc.oneof(fc.domain(), fc.constantFrom('a:1', 'a/b', '[::1]'), anyValue),
    ip: fc.oneof(fc.ipV4(), fc.ipV6(), anyValue),
    port: fc.oneof(fc.integer({ min: -1, max: 70000 }), anyValue),
    path: fc.oneof(fc.webPath(), fc.constantFrom('?q', '#f', 'a b'), anyValue),
    slug: fc.oneof(fc.constantFrom('user-svc', 'a b', ''), anyValue),
    deploymentId: anyValue,
    nodeUrl: fc.oneof(fc.webUrl(), anyValue),
    tags: fc.oneof(fc.array(fc.string(), { maxLength: 3 }), anyValue),
    status: fc.constantFrom('Healthy', 'Bogus'),
    extra: anyValue,
  },
  { requiredKeys: [] },
)
const definitionBody = fc.record(
  {
    definition: fc.oneof(
      fc.record(
        {
          id: fc.oneof(fc.constantFrom('def-1', 'a/b'), anyValue),
          image: fc.oneof(
            fc.record(
              {
                name: fc.oneof(fc.string(), anyValue),
                port: fc.oneof(fc.integer(), anyValue),
                internalPorts: fc.oneof(fc.array(fc.integer()), anyValue),
              },
              { requiredKeys: [] },
            ),
            anyValue,
          ),
          repository: fc.oneof(
            fc.record(
              { url: fc.string(), containerFile: fc.string(), port: fc.integer() },
              { requiredKeys: [] },
            ),
            anyValue,
          ),
          hostPort: fc.oneof(fc.integer({ min: 0, max: 70000 }), anyValue),
          ports: fc.oneof(fc.array(fc.record({ internal: fc.integer(), host: fc.integer() })), anyValue),
          apiSpecs: fc.oneof(
            fc.array(fc.record({ url: fc.string(), metadata: fc.dictionary(fc.string(), fc.string()) })),
            anyValue,
          ),
        },
        { requiredKeys: [] },
      ),
      anyValue,
    ),
    other: anyValue,
  },
  { requiredKeys: [] },
)
/** A valid body with at most one field replaced by a random value: reaches the deeper checks. */
function mutated(valid: fc.Arbitrary<Record<string, unknown>>, fields: string[]) {
  return fc
    .tuple(valid, fc.option(fc.tuple(fc.constantFrom(...fields), anyValue), { freq: 2 }))
    .map(([base, change]) => (change === null ? base : { ...base, [change[0]]: change[1] }))
}
const validInstance = fc.record(
  {
    url: fc.webUrl({ validSchemes: ['http', 'https', 'grpc'] }),
    slug: fc.constantFrom('user-svc', 'b'),
    tags: fc.array(fc.string(), { maxLength: 2 }),
  },
  { requiredKeys: ['url', 'slug'] },
)
const validDefinition = fc
  .record({
    id: fc.constantFrom('def-1', 'def-2'),
    name: fc.string({ minLength: 1 }),
    port: fc.integer({ min: 1, max: 65535 }),
  })
  .map(({ id, name, port }) => ({ definition: { id, image: { name, port } } }))

const body = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 1 },
  {
    arbitrary: mutated(validInstance, ['url', 'slug', 'tags', 'port', 'id', 'status']).map((b) =>
      JSON.stringify(b),
    ),
    weight: 4,
  },
  { arbitrary: mutated(validDefinition, ['definition', 'extra']).map((b) => JSON.stringify(b)), weight: 3 },
  { arbitrary: instanceBody.map((b) => JSON.stringify(b)), weight: 2 },
  { arbitrary: definitionBody.map((b) => JSON.stringify(b)), weight: 2 },
  {
    arbitrary: fc
      .record({ ids: fc.oneof(fc.array(fc.oneof(fc.string(), anyValue)), anyValue) }, { requiredKeys: [] })
      .map((b) => JSON.stringify(b)),
    weight: 1,
  },
  { arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)), weight: 1 },
  { arbitrary: fc.string({ maxLength: 200 }), weight: 1 },
  {
    arbitrary: fc.constantFrom(
      '',
      '{',
      '{"definition":',
      'null',
      '[]',
      '{"__proto__": {"polluted": true}}',
      '{"constructor": {"prototype": {"x": 1}}}',
    ),
    weight: 1,
  },
)
const contentType = fc.oneof(
  { arbitrary: fc.constant('application/json'), weight: 6 },
  {
    arbitrary: fc.constantFrom(
      undefined,
      'application/json; charset=utf-8',
      'text/plain',
      'application/x-www-form-urlencoded',
      'json',
      'application/json; charset',
      ';;;',
    ),
    weight: 2,
  },
)

/** Mostly the API's own method + path pairs, sometimes any method on any path. */
const ROUTES: Array<[string, string]> = [
  ['PUT', '/registry-svc/definition'],
  ['GET', '/registry-svc/definitions'],
  ['DELETE', '/registry-svc/definition/'],
  ['PUT', '/registry-svc/instance'],
  ['GET', '/registry-svc/instances'],
  ['DELETE', '/registry-svc/instance/'],
  ['POST', '/registry-svc/nodes'],
  ['GET', '/registry-svc/node/self'],
  ['DELETE', '/registry-svc/node/'],
  ['GET', '/healthz'],
]
const target = fc.oneof(
  {
    arbitrary: fc
      .tuple(fc.constantFrom(...ROUTES), segment)
      .map(([[method, path], seg]) => ({ method, path: path.endsWith('/') ? path + seg : path })),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      method: fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'),
      path: fc.oneof(
        fc.constantFrom(...PATHS),
        fc
          .tuple(
            fc.constantFrom('/registry-svc/definition/', '/registry-svc/instance/', '/registry-svc/node/'),
            segment,
          )
          .map(([p, x]) => p + x),
      ),
    }),
    weight: 1,
  },
)

const request = fc.record({
  target,
  query: fc.oneof({ arbitrary: fc.constant(''), weight: 2 }, { arbitrary: query, weight: 1 }),
  body,
  contentType,
  auth: fc.oneof(
    { arbitrary: fc.constant(`Bearer ${TOKEN}`), weight: 4 },
    { arbitrary: fc.constantFrom(undefined, 'Bearer wrong', 'Basic x'), weight: 1 },
  ),
})

describe('fuzzed requests', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startServer({ init: { apiToken: TOKEN, bodyLimitBytes: 64 * 1024, logRequests: false } })
    await s.call('PUT', '/registry-svc/definition', {
      body: { definition: { id: 'def-1', image: { name: 'nginx' } } },
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    await putNode(s.replica, { id: 'node-b', url: 'http://127.0.0.2:11337' })
  })
  afterAll(() => s.close())

  it('never answer 5xx; every error is {"error"}; a 4xx changes nothing', async () => {
    const seen = new Map<number, number>()
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const before = snapshot(s.replica)
        const headers: Record<string, string> = {}
        if (r.contentType !== undefined) headers['content-type'] = r.contentType
        if (r.auth !== undefined) headers.authorization = r.auth
        const { method, path } = r.target
        const answer = await s.app.inject({
          method: method as 'GET',
          url: r.query === '' ? path : `${path}?${r.query}`,
          headers,
          ...(r.body === undefined || method === 'GET' || method === 'HEAD' ? {} : { payload: r.body }),
        })
        seen.set(answer.statusCode, (seen.get(answer.statusCode) ?? 0) + 1)
        expect(answer.statusCode, `${method} ${path}: ${answer.body}`).toBeLessThan(500)
        if (answer.statusCode >= 400 && method !== 'HEAD') {
          expect(Object.keys(answer.json()), answer.body).toEqual(['error'])
          expect(typeof answer.json().error).toBe('string')
        }
        if (answer.statusCode >= 400) expect(snapshot(s.replica)).toEqual(before)
        expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 1500) },
    )
    // The generator reaches past the first checks: writes that succeed and each kind of refusal.
    console.log('fuzz statuses', Object.fromEntries([...seen].sort()))
    for (const status of [200, 201, 400, 401, 404, 405, 415])
      expect(seen.get(status), `status ${status} seen`).toBeGreaterThan(0)
  })
})
