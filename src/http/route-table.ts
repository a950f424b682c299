/**
 * The app's route patterns by method, to tell "no such path" (404) from "no such method on this
 * path" (405 with `Allow`), which Fastify's router does not distinguish.
 */
export class RouteTable {
  readonly #routes: Array<{ method: string; pattern: RegExp }> = []

  /** Adds a Fastify route pattern (`/registry-svc/definition/:id`). */
  add(methods: string | readonly string[], url: string): void {
    const source = url
      .split('/')
      .map((segment) =>
        segment.startsWith(':')
          ? '[^/]+'
          : segment === '*'
            ? '.*'
            : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
      )
      .join('/')
    const pattern = new RegExp(`^${source}/?$`)
    for (const method of typeof methods === 'string' ? [methods] : methods)
      this.#routes.push({ method, pattern })
  }

  /** Methods with a route matching `path` (no query string), sorted; empty when the path is unknown. */
  allowedMethods(path: string): string[] {
    const methods = new Set<string>()
    for (const route of this.#routes) if (route.pattern.test(path)) methods.add(route.method)
    return [...methods].sort()
  }
}
