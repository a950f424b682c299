/**
 * Per-route settings the app's hooks read from `request.routeOptions.config`.
 */
declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route writes to the registry: it needs the API token when one is configured. */
    mutating?: boolean
    /**
     * How validation messages name the body's root: `instance` gives `instance.url must be a string`;
     * empty (the default) names top-level fields bare (`definition.id …`) and the body itself
     * `request body`.
     */
    bodyField?: string
  }
}

export {}
