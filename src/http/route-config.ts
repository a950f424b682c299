import type { Grant } from './tokens.ts'

/**
 * Per-route settings the app's hooks read from `request.routeOptions.config`.
 */
declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route writes to the registry: it needs a token when any is configured. */
    mutating?: boolean
    /** A mutating route a service token may call (its handler checks the slug). */
    serviceMayWrite?: boolean
    /** A read that needs no token even with OB_READS_NEED_TOKEN (health checks). */
    open?: boolean
    /**
     * How validation messages name the body's root: `instance` gives `instance.url must be a string`;
     * empty (the default) names top-level fields bare (`definition.id …`) and the body itself
     * `request body`.
     */
    bodyField?: string
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** What the request's token grants, when the auth hook checked one. */
    grant?: Grant
  }
}
