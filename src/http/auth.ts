import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { UnauthorizedError } from './errors.ts'

/**
 * An `onRequest` hook that lets a mutating route (route config `mutating: true`) run only with
 * `Authorization: Bearer <token>`. It runs before the body is read, so a request without the token
 * is refused without reading or storing anything; reads are never checked.
 *
 * Tokens are compared as SHA-256 digests with `timingSafeEqual`: equal lengths, and a comparison time
 * that depends neither on where the first differing byte is nor on the token's length.
 */
export function requireBearerToken(token: string) {
  const expected = digest(token)
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    if (request.routeOptions.config.mutating !== true) return
    const header = request.headers.authorization
    if (header === undefined) {
      throw new UnauthorizedError(
        'this request changes the registry and needs an Authorization: Bearer <token> header',
      )
    }
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
    if (match === null) throw new UnauthorizedError('the Authorization header must be "Bearer <token>"')
    if (!timingSafeEqual(digest(match[1]!), expected))
      throw new UnauthorizedError('the API token is not valid')
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest()
}
