import type { FastifyRequest } from 'fastify'
import { describe, expect, it } from 'vitest'
import { HTTP_ERROR_STATUS, toHttpError } from '../../src/http/errors.ts'
import {
  BadRequestError,
  BodyTooLargeError,
  InternalError,
  InvalidJsonError,
  MethodNotAllowedError,
  NotFoundError,
  QuotaExceededError,
  RequestValidationError,
  RouteNotFoundError,
  ShuttingDownError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
} from '../../src/http/index.ts'
import { ValidationError } from '../../src/model/index.ts'
import { readmeTable } from '../support/readme.ts'
import { startServer } from './fixtures.ts'

describe('error catalogue', () => {
  it("is the README's error table, row for row: code and status", async () => {
    const rows = (await readmeTable('**Errors.**')).map(([code, status]) => [code, Number(status)])
    expect(rows).toEqual(Object.entries(HTTP_ERROR_STATUS))
  })

  it('gives every error a stable name, code and status', () => {
    const table = [
      new InvalidJsonError('x'),
      new RequestValidationError('x', 'f'),
      new BadRequestError('x'),
      new UnauthorizedError('x'),
      new NotFoundError('definition', 'd'),
      new RouteNotFoundError('GET', '/x'),
      new MethodNotAllowedError('PATCH', '/x', ['GET']),
      new BodyTooLargeError(10),
      new UnsupportedMediaTypeError('text/plain'),
      new QuotaExceededError('x'),
      new ShuttingDownError(),
      new InternalError(),
    ].map((e) => [e.name, e.code, e.statusCode])
    expect(table).toEqual([
      ['InvalidJsonError', 'invalid-json', 400],
      ['RequestValidationError', 'validation', 400],
      ['BadRequestError', 'bad-request', 400],
      ['UnauthorizedError', 'unauthorized', 401],
      ['NotFoundError', 'not-found', 404],
      ['RouteNotFoundError', 'route-not-found', 404],
      ['MethodNotAllowedError', 'method-not-allowed', 405],
      ['BodyTooLargeError', 'body-too-large', 413],
      ['UnsupportedMediaTypeError', 'unsupported-media-type', 415],
      ['QuotaExceededError', 'quota-exceeded', 507],
      ['ShuttingDownError', 'shutting-down', 503],
      ['InternalError', 'internal', 500],
    ])
  })

  it('answers 507 with the reason when a write would pass the replica limit, and changes nothing', async () => {
    const s = await startServer({ maxEntities: 2 })
    try {
      for (const port of [1, 2]) {
        const put = await s.call('PUT', '/registry-svc/instance', {
          body: { url: `http://127.0.0.1:${port}`, slug: 'q' },
        })
        expect(put.status).toBe(201)
      }
      const refused = await s.call('PUT', '/registry-svc/instance', {
        body: { url: 'http://127.0.0.1:3', slug: 'q' },
      })
      expect(refused).toMatchObject({
        status: 507,
        json: {
          error: 'the replica holds 2 instance entries, its limit (OB_MAX_ENTITIES); delete some first',
        },
      })
      expect(s.replica.instances().map((i) => i.url)).toEqual(
        ['http://127.0.0.1:1', 'http://127.0.0.1:2'].sort(),
      )
      // Re-registering a held instance is an update, not a new entry.
      expect(
        (await s.call('PUT', '/registry-svc/instance', { body: { url: 'http://127.0.0.1:1', slug: 'q' } }))
          .status,
      ).toBe(201)
    } finally {
      await s.close()
    }
  })

  it('maps the model ValidationError to a 400 with its message, and anything unknown to a 500', () => {
    const request = {} as FastifyRequest
    const invalid = toHttpError(new ValidationError('instance.url must be a string', 'instance.url'), request)
    expect(invalid).toMatchObject({
      statusCode: 400,
      message: 'instance.url must be a string',
      field: 'instance.url',
    })
    expect(toHttpError(new TypeError('x is undefined'), request)).toBeInstanceOf(InternalError)
    expect(toHttpError('a string', request)).toBeInstanceOf(InternalError)
  })

  it('answers a server-side failure 500 {"error"} without details, and logs the cause', async () => {
    const s = await startServer()
    try {
      await s.replica.close() // LevelDB gone: the next write fails inside the agent
      const answer = await s.call('PUT', '/registry-svc/instance', { body: { url: 'http://a:1', slug: 's' } })
      expect(answer.status).toBe(500)
      expect(answer.json).toEqual({ error: 'internal error; the agent log has the details' })
      expect(s.logs.some((l) => l.level === 50 && l.msg === 'request failed inside the agent')).toBe(true)
    } finally {
      await s.close()
    }
  })
})
