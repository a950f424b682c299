import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CallOptions, putNode, snapshot, startServer, type TestServer } from './fixtures.ts'

const json = { 'content-type': 'application/json' }
const validInstance = { url: 'http://127.0.0.1:8080', slug: 'user-svc' }
const validDefinition = { id: 'def-1', image: { name: 'nginx', port: 80 } }

interface BadCase {
  name: string
  method: string
  path: string
  options?: CallOptions
  status: number
  /** What the error message must say (it names the problem). */
  error: RegExp
}

const LIMIT = 16 * 1024

const CASES: BadCase[] = [
  // invalid JSON
  {
    name: 'invalid JSON',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: '{"url": "http://a:1", "slug": ', headers: json },
    status: 400,
    error: /^request body is not valid JSON: /,
  },
  {
    name: 'invalid JSON (definition)',
    method: 'PUT',
    path: '/registry-svc/definition',
    options: { body: "{'definition': {}}", headers: json },
    status: 400,
    error: /not valid JSON.*position 1/,
  },
  {
    name: 'empty body',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: '', headers: json },
    status: 400,
    error: /request body is missing/,
  },
  {
    name: 'a JSON array instead of an object',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: [validInstance] },
    status: 400,
    error: /^instance must be an object$/,
  },
  // wrong types
  {
    name: 'port as a string',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: { scheme: 'http', host: 'a', port: '8080', slug: 's' } },
    status: 400,
    error: /^instance\.port must be an integer$/,
  },
  {
    name: 'port out of range',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: { scheme: 'http', host: 'a', port: 70000, slug: 's' } },
    status: 400,
    error: /^instance\.port must be an integer 1-65535$/,
  },
  {
    name: 'tags not an array',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: { ...validInstance, tags: 'blue' } },
    status: 400,
    error: /^instance\.tags must be an array$/,
  },
  {
    name: 'a nested wrong type in a definition',
    method: 'PUT',
    path: '/registry-svc/definition',
    options: { body: { definition: { id: 'd', image: { name: 'x', internalPorts: [80, 'http'] } } } },
    status: 400,
    error: /^definition\.image\.internalPorts\[1\] must be an integer/,
  },
  {
    name: 'ids not an array of ids',
    method: 'POST',
    path: '/registry-svc/nodes',
    options: { body: { ids: 'node-a' } },
    status: 400,
    error: /^ids must be an array$/,
  },
  // checks
  ...(
    [
      ['an unknown check type', { type: 'grpc' }, /^instance\.check\.type must be/],
      [
        'a path on a tcp check',
        { type: 'tcp', path: '/health' },
        /^instance\.check\.path is only for an http check$/,
      ],
      [
        'a ttl on an http check',
        { type: 'http', ttlMs: 1000 },
        /^instance\.check\.ttlMs is only for a ttl check$/,
      ],
      [
        'a timeout not below the interval',
        { type: 'tcp', intervalMs: 1000, timeoutMs: 1000 },
        /^instance\.check\.timeoutMs must be below intervalMs \(1000\)$/,
      ],
      ['an interval under 100 ms', { type: 'tcp', intervalMs: 10 }, /^instance\.check\.intervalMs must be/],
      ['an unknown check field', { type: 'tcp', every: 5 }, /instance\.check has unknown field "every"/],
    ] as const
  ).map(([name, check, error]) => ({
    name,
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: { url: 'http://127.0.0.1:1', slug: 'user-svc', check } },
    status: 400,
    error,
  })),
  {
    name: 'a heartbeat with an unknown status',
    method: 'PUT',
    path: '/registry-svc/instance/inst_0000000000000000/heartbeat',
    options: { body: { status: 'Fine' } },
    status: 400,
    error: /status/,
  },
  // missing fields
  {
    name: 'missing url',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: { slug: 'user-svc' } },
    status: 400,
    error: /^instance needs url or scheme\+host\+port$/,
  },
  {
    name: 'missing port with parts',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: { scheme: 'http', host: 'a', slug: 'user-svc' } },
    status: 400,
    error: /port missing/,
  },
  {
    name: 'a relative url',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: { url: '/just/a/path', slug: 's' } },
    status: 400,
    error: /^instance\.url must be an absolute URL/,
  },
  {
    name: 'definition missing',
    method: 'PUT',
    path: '/registry-svc/definition',
    options: { body: {} },
    status: 400,
    error: /^definition is required$/,
  },
  {
    name: 'definition with neither image nor repository',
    method: 'PUT',
    path: '/registry-svc/definition',
    options: { body: { definition: { id: 'd' } } },
    status: 400,
    error: /^definition needs an image or a repository$/,
  },
  // unknown fields and unknown status
  {
    name: 'unknown fields, all named',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: { ...validInstance, slg: 'x', hots: 'y' } },
    status: 400,
    error: /^instance has unknown fields "slg", "hots"$/,
  },
  {
    name: 'status is not part of a registration',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: { ...validInstance, status: 'Healthy' } },
    status: 400,
    error: /^instance has unknown field "status"$/,
  },
  {
    name: 'unknown top-level field next to definition',
    method: 'PUT',
    path: '/registry-svc/definition',
    options: { body: { definition: validDefinition, extra: 1 } },
    status: 400,
    error: /^request body has unknown field "extra"$/,
  },
  {
    name: 'unknown status in the query',
    method: 'GET',
    path: '/registry-svc/instances?status=Sleepy',
    status: 400,
    error: /^query parameter "status" must be one of Unknown, Healthy, Degraded, Unreachable, Error$/,
  },
  {
    name: 'lower-case status in the query (no coercion)',
    method: 'GET',
    path: '/registry-svc/instances?status=healthy',
    status: 400,
    error: /"status" must be one of/,
  },
  // ids with slashes or control characters
  {
    name: 'an instance id with a slash in the body',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: { ...validInstance, id: 'a/b' } },
    status: 400,
    error: /^instance\.id must match the identifier rule/,
  },
  {
    name: 'a definition id with a control character',
    method: 'PUT',
    path: '/registry-svc/definition',
    options: { body: { definition: { ...validDefinition, id: 'a\u0007b' } } },
    status: 400,
    error: /^definition\.id must match the identifier rule/,
  },
  {
    name: 'a slug with a space',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: { url: 'http://a:1', slug: 'user svc' } },
    status: 400,
    error: /^instance\.slug must match the identifier rule/,
  },
  {
    name: 'an escaped slash in a path id',
    method: 'DELETE',
    path: '/registry-svc/definition/a%2Fb',
    status: 400,
    error: /^path parameter "id" must match the identifier rule/,
  },
  {
    name: 'a control character in a path id',
    method: 'DELETE',
    path: '/registry-svc/instance/a%0Ab',
    status: 400,
    error: /^path parameter "id" must match the identifier rule/,
  },
  {
    name: 'a raw slash in a path id (no such route)',
    method: 'DELETE',
    path: '/registry-svc/instance/a/b',
    status: 404,
    error: /^no route DELETE \/registry-svc\/instance\/a\/b$/,
  },
  {
    name: 'a NUL in a node URL',
    method: 'DELETE',
    path: '/registry-svc/node/http%3A%2F%2Fa%00b',
    status: 400,
    error: /^path parameter "url" must not .*contain control characters$/,
  },
  {
    name: 'broken percent-encoding in the path',
    method: 'DELETE',
    path: '/registry-svc/definition/a%zzb',
    status: 400,
    error: /^the request path has invalid percent-encoding$/,
  },
  {
    name: 'an id with a slash in the ids list',
    method: 'POST',
    path: '/registry-svc/nodes',
    options: { body: { ids: ['ok', 'no/pe'] } },
    status: 400,
    error: /^ids\[1\] must match the identifier rule/,
  },
  {
    name: 'a slug with a slash in the query',
    method: 'GET',
    path: '/registry-svc/instances?slug=a%2Fb',
    status: 400,
    error: /^query parameter "slug" must match the identifier rule/,
  },
  // query strings with arrays or unknown parameters
  {
    name: 'a repeated query parameter',
    method: 'GET',
    path: '/registry-svc/instances?slug=a&slug=b',
    status: 400,
    error: /^query parameter "slug" is given 2 times; give it at most once$/,
  },
  {
    name: 'a repeated tag',
    method: 'GET',
    path: '/registry-svc/instances?tag=a&tag=b&tag=c',
    status: 400,
    error: /^query parameter "tag" is given 3 times/,
  },
  {
    name: 'bracket array syntax (an unknown parameter "slug[]")',
    method: 'GET',
    path: '/registry-svc/instances?slug[]=a',
    status: 400,
    error: /^unknown query parameter "slug\[\]" \(known: id, slug, /,
  },
  {
    name: 'unknown query parameters, all named',
    method: 'GET',
    path: '/registry-svc/instances?slug=a&limit=5&sort=id',
    status: 400,
    error: /^unknown query parameters "limit", "sort" \(known: /,
  },
  {
    name: 'a query parameter on a route that takes none',
    method: 'DELETE',
    path: '/registry-svc/definition/def-1?force=true',
    status: 400,
    error: /^unknown query parameter "force" \(this route takes none\)$/,
  },
  {
    name: 'an empty slug',
    method: 'GET',
    path: '/registry-svc/instances?slug=',
    status: 400,
    error: /^query parameter "slug" must match the identifier rule/,
  },
  // body size and content type
  {
    name: 'a body over the limit',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: { ...validInstance, tags: ['x'.repeat(LIMIT)] } },
    status: 413,
    error: new RegExp(`^request body is larger than the limit of ${LIMIT} bytes`),
  },
  {
    name: 'a huge body over the limit',
    method: 'PUT',
    path: '/registry-svc/definition',
    options: { body: 'x'.repeat(8 * 1024 * 1024), headers: json },
    status: 413,
    error: /larger than the limit/,
  },
  {
    name: 'text/plain',
    method: 'PUT',
    path: '/registry-svc/instance',
    options: { body: JSON.stringify(validInstance), headers: { 'content-type': 'text/plain' } },
    status: 415,
    error: /^content-type "text\/plain" is not supported; send application\/json$/,
  },
  {
    name: 'a form body (curl -d without -H)',
    method: 'PUT',
    path: '/registry-svc/definition',
    options: {
      body: JSON.stringify({ definition: validDefinition }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    },
    status: 415,
    error: /application\/x-www-form-urlencoded" is not supported/,
  },
  {
    name: 'a malformed content type',
    method: 'POST',
    path: '/registry-svc/nodes',
    options: { body: '{}', headers: { 'content-type': 'json' } },
    status: 415,
    error: /is not supported|needs Content-Type/,
  },
]

describe('bad input gets a 4xx {"error"} naming the problem and changes nothing', () => {
  let s: TestServer
  beforeAll(async () => {
    s = await startServer({ init: { bodyLimitBytes: LIMIT } })
    // Something to leave untouched.
    await s.call('PUT', '/registry-svc/definition', { body: { definition: validDefinition } })
    await s.call('PUT', '/registry-svc/instance', { body: validInstance })
    await putNode(s.replica, { id: 'node-b', url: 'http://127.0.0.2:11337' })
  })
  afterAll(() => s.close())

  it.each(CASES)('$name → $status', async ({ method, path, options, status, error }) => {
    const before = snapshot(s.replica)
    const answer = await s.call(method, path, options)
    expect(answer.status, answer.text).toBe(status)
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/)
    expect(Object.keys(answer.json)).toEqual(['error'])
    expect(answer.json.error).toMatch(error)
    expect(snapshot(s.replica)).toEqual(before)
  })

  it('stored nothing from any of them', () => {
    expect(s.replica.counts()).toEqual({ definitions: 1, instances: 1, nodes: 1, tombstones: 0 })
  })

  it('keeps answering after a 413 on the same keep-alive connection pool', async () => {
    expect((await s.call('GET', '/registry-svc/instances?slug=user-svc')).json.instances).toHaveLength(1)
  })
})
