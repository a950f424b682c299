import SwaggerParser from '@apidevtools/swagger-parser'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { OpenAPIV3_1 } from 'openapi-types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Answer, putNode, startServer, type TestServer } from './fixtures.ts'

type Operation = OpenAPIV3_1.OperationObject
type Parameter = OpenAPIV3_1.ParameterObject
type Response = OpenAPIV3_1.ResponseObject

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const

/** Whether an operation answers a Server-Sent Events stream. */
function isEventStream(op: Operation): boolean {
  const ok = op.responses?.['200'] as Response | undefined
  return ok?.content?.['text/event-stream'] !== undefined
}

describe('/openapi.json', () => {
  let s: TestServer
  let document: OpenAPIV3_1.Document
  let operations: Array<{ method: string; path: string; op: Operation }>
  const ajv = new Ajv2020({ strict: false, allErrors: true })

  beforeAll(async () => {
    s = await startServer()
    await putNode(s.replica, { id: 'node-b', url: 'http://127.0.0.7:11337' })
    const answer = await s.call('GET', '/openapi.json')
    expect(answer.status).toBe(200)
    document = answer.json
    // validate() resolves $refs in place: give it a copy and keep the answer for the checks below.
    const resolved = (await SwaggerParser.validate(structuredClone(document))) as OpenAPIV3_1.Document
    operations = Object.entries(resolved.paths ?? {}).flatMap(([path, item]) =>
      METHODS.filter((m) => item?.[m] !== undefined).map((method) => ({ method, path, op: item![method]! })),
    )
  })
  afterAll(() => s.close())

  it('is a valid OpenAPI 3.1 document describing every route of the API', () => {
    expect(document.openapi).toBe('3.1.0')
    expect(operations.map(({ method, path }) => `${method.toUpperCase()} ${path}`).sort()).toEqual(
      [
        'PUT /registry-svc/definition',
        'GET /registry-svc/definitions',
        'DELETE /registry-svc/definition/{id}',
        'PUT /registry-svc/instance',
        'GET /registry-svc/instances',
        'DELETE /registry-svc/instance/{id}',
        'GET /registry-svc/instances/watch',
        'GET /registry-svc/nodes/watch',
        'GET /registry-svc/services',
        'GET /registry-svc/services/watch',
        'GET /registry-svc/definitions/watch',
        'PUT /registry-svc/instance/{id}/heartbeat',
        'POST /registry-svc/nodes',
        'GET /registry-svc/node/self',
        'DELETE /registry-svc/node/{url}',
        'GET /healthz',
        'GET /metrics',
        'GET /openapi.json',
      ].sort(),
    )
    const query = operations.find((o) => o.path === '/registry-svc/instances')!.op.parameters as Parameter[]
    expect(query.map((p) => p.name).sort()).toEqual(
      [
        'deploymentId',
        'host',
        'id',
        'index',
        'ip',
        'path',
        'scheme',
        'slug',
        'status',
        'tag',
        'url',
        'wait',
      ].sort(),
    )
    for (const { op, method } of operations) {
      const codes = Object.keys(op.responses ?? {})
      if (['put', 'delete'].includes(method)) expect(op.security).toEqual([{ bearerAuth: [] }])
      if (op.requestBody !== undefined) expect(codes).toEqual(expect.arrayContaining(['400', '413', '415']))
    }
  })

  /** Checks an answer against the responses documented for the operation. */
  function expectDocumented(op: Operation, answer: Answer, what: string) {
    const responses = op.responses as Record<string, Response>
    expect(
      Object.keys(responses),
      `${what}: status ${answer.status} is documented (${answer.text})`,
    ).toContain(String(answer.status))
    const content = responses[String(answer.status)]!.content
    if (content === undefined) {
      expect(answer.text, `${what}: no body`).toBe('')
      return
    }
    const [mediaType, media] = Object.entries(content)[0]!
    expect(answer.headers.get('content-type'), what).toContain(mediaType)
    const body = mediaType === 'application/json' ? answer.json : answer.text
    const validate = ajv.compile(media.schema as object)
    expect(validate(body) ? [] : validate.errors, `${what}: body matches the documented schema`).toEqual([])
  }

  /** The documented example body of an operation, if any. */
  function exampleBodies(op: Operation): unknown[] {
    const media = (op.requestBody as OpenAPIV3_1.RequestBodyObject | undefined)?.content['application/json']
    if (media === undefined) return []
    if (media.example !== undefined) return [media.example]
    return Object.values(media.examples ?? {}).map((e) => (e as OpenAPIV3_1.ExampleObject).value)
  }

  function pathWith(path: string, op: Operation, value?: (p: Parameter) => string): string {
    return path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const p = (op.parameters as Parameter[]).find((x) => x.in === 'path' && x.name === name)!
      return encodeURIComponent(
        value?.(p) ?? String((p.schema as { examples?: unknown[] }).examples?.[0] ?? p.example ?? 'test-a'),
      )
    })
  }

  it('answers each documented route as documented: the examples succeed', async () => {
    // The instance the heartbeat example renews: owned by this agent.
    await s.call('PUT', '/registry-svc/instance', {
      body: { id: 'test-a', url: 'http://127.0.0.1:9', slug: 'svc' },
    })
    // Writes first so the reads and deletes that follow have something to answer.
    const order = ['put', 'post', 'get', 'delete']
    const sorted = [...operations].sort((a, b) => order.indexOf(a.method) - order.indexOf(b.method))
    for (const { method, path, op } of sorted) {
      if (isEventStream(op)) {
        // A stream: it answers 200 text/event-stream and its first event at once.
        const controller = new AbortController()
        const response = await fetch(`${s.url}${path}`, { signal: controller.signal })
        expect(response.status, path).toBe(200)
        expect(response.headers.get('content-type'), path).toBe('text/event-stream; charset=utf-8')
        const reader = response.body!.getReader()
        expect(new TextDecoder().decode((await reader.read()).value), path).toMatch(
          /^event: (instances|nodes|services|definitions)\n/,
        )
        controller.abort()
        continue
      }
      const bodies = exampleBodies(op)
      for (const body of bodies.length > 0 ? bodies : [undefined]) {
        const url = pathWith(path, op)
        const answer = await s.call(method.toUpperCase(), url, body === undefined ? {} : { body })
        const what = `${method.toUpperCase()} ${url} ${JSON.stringify(body) ?? ''}`
        expect(answer.status, `${what}: ${answer.text}`).toBeLessThan(method === 'delete' ? 500 : 300)
        expectDocumented(op, answer, what)
      }
    }
  })

  it('answers each documented route as documented: bad input gets a documented 4xx', async () => {
    for (const { method, path, op } of operations) {
      const hasBody = op.requestBody !== undefined
      const hasParams = (op.parameters as Parameter[] | undefined)?.some((p) => p.in === 'path')
      const hasQuery = (op.parameters as Parameter[] | undefined)?.some((p) => p.in === 'query')
      if (!hasBody && !hasParams && !hasQuery) continue
      const url = hasParams
        ? pathWith(path, op, () => 'bad\u0001value/x')
        : hasQuery
          ? `${path}?${(op.parameters as Parameter[])[0]!.name}=%2F%2F`
          : path
      const answer = await s.call(method.toUpperCase(), url, hasBody ? { body: { bogusField: true } } : {})
      const what = `${method.toUpperCase()} ${url}`
      expect(answer.status, what).toBe(400)
      expectDocumented(op, answer, what)
    }
  })

  it('documents the short-form definition examples of the 1Backend docs and the optional node-list body', () => {
    const put = operations.find((o) => o.method === 'put' && o.path === '/registry-svc/definition')!
    expect(exampleBodies(put.op).map((b) => (b as { definition: { id: string } }).definition.id)).toEqual([
      'test-a',
      'test-b',
    ])
    const nodes = operations.find((o) => o.path === '/registry-svc/nodes')!
    expect((nodes.op.requestBody as OpenAPIV3_1.RequestBodyObject).required).toBe(false)
  })
})
