import type { FastifyReply, FastifyRequest } from 'fastify'
import { ForbiddenError, UnauthorizedError } from './errors.ts'
import type { Grant, TokenSource } from './tokens.ts'

/**
 * An `onRequest` hook: who may do what (DESIGN.md §7.3). It runs before the body is read, so a
 * request refused here is refused without reading or storing anything.
 *
 * - Without any token configured, every request is allowed.
 * - A mutating route (route config `mutating: true`) needs a token (401 without one, or with one the
 *   agent does not know); a reader token gets 403; a service token gets 403 unless the route lets
 *   services in (`serviceMayWrite`), whose handler then checks the slug (`assertServiceSlug`).
 * - Reads need a token only with `readsNeedToken` (any role), except routes marked `open` (health).
 *
 * The grant is left on `request.grant` for the handlers.
 */
export function authenticate(tokens: TokenSource, readsNeedToken: boolean) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const known = tokens.current()
    if (!known.enabled) return
    const config = request.routeOptions.config
    const mutating = config.mutating === true
    if (!mutating && (!readsNeedToken || config.open === true)) return
    const header = request.headers.authorization
    if (header === undefined) {
      throw new UnauthorizedError(
        mutating
          ? 'this request changes the registry and needs an Authorization: Bearer <token> header'
          : 'this agent needs a token for reads too (OB_READS_NEED_TOKEN): send Authorization: Bearer <token>',
      )
    }
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
    if (match === null) throw new UnauthorizedError('the Authorization header must be "Bearer <token>"')
    const grant = known.grantOf(match[1]!)
    if (grant === undefined) throw new UnauthorizedError('the API token is not valid')
    request.grant = grant
    if (!mutating || grant.role === 'admin') return
    if (grant.role === 'reader') throw new ForbiddenError('a reader token cannot change the registry')
    if (config.serviceMayWrite !== true) {
      throw new ForbiddenError(
        `the service token of "${grant.slug}" may only register, renew and remove instances of its slug`,
      )
    }
  }
}

/**
 * For a service token: the slug a write acts on must be the token's. `slug` is the instance's (the
 * one registered, or the one stored); `what` says what was tried, for the message.
 */
export function assertServiceSlug(grant: Grant | undefined, slug: string | undefined, what: string): void {
  if (grant?.role !== 'service' || slug === grant.slug) return
  throw new ForbiddenError(
    `the service token of "${grant.slug}" cannot ${what} ${slug === undefined ? 'without a slug' : `of "${slug}"`}`,
  )
}
