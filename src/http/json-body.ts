import type { FastifyInstance, FastifyRequest } from 'fastify'
import { InvalidJsonError } from './errors.ts'

/**
 * Makes `application/json` (with any parameters, e.g. `; charset=utf-8`) the only body type the API
 * reads; any other media type, Fastify's built-in `text/plain` included, is answered 415 by Fastify
 * before a route runs. Bodies over the app's limit are cut off by Fastify with a 413.
 *
 * An empty body parses to `undefined`, so a bodyless POST works whether or not the client sets the
 * content type (the routes' schemas decide whether a body is required). Invalid JSON is an
 * `InvalidJsonError` carrying V8's description, which names the position of the fault. `__proto__`
 * keys stay plain own properties (JSON.parse semantics): every body is checked against a closed schema
 * and rebuilt by the model into fresh objects, so nothing merges them into a prototype.
 */
export function acceptJsonBodiesOnly(app: FastifyInstance): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJson)
}

function parseJson(
  _request: FastifyRequest,
  body: string | Buffer,
  done: (err: Error | null, body?: unknown) => void,
) {
  const text = typeof body === 'string' ? body : body.toString('utf8')
  if (text.trim() === '') {
    done(null, undefined)
    return
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    done(new InvalidJsonError((err as Error).message))
    return
  }
  done(null, parsed)
}
