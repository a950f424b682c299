import type { RegistryClient } from './api.ts'
import { NoInstanceError } from './errors.ts'
import type { Instance, NodeRecord } from './types.ts'

export type Strategy = 'round-robin' | 'random' | 'p2c'

export interface ServiceOptions {
  /** Only instances carrying every one of these tags. */
  tags?: string[]
  /** How `pick` chooses among the candidates. p2c: the less busy of two at random. @default round-robin */
  strategy?: Strategy
  /** The caller's availability zone: instances on nodes of that zone first, others when none is healthy. */
  zone?: string
  /** Only Healthy instances (Degraded ones when none is Healthy). @default true */
  healthyOnly?: boolean
  /** Further instances `fetch` tries after a connection error or a 5xx. @default 2 */
  retries?: number
  /** Consecutive failures that eject an instance. @default 3 */
  ejectAfterFailures?: number
  /** How long an ejected instance is left out, ms. @default 30000 */
  ejectForMs?: number
  /** Most of the instances ejected at once, as a share. @default 0.5 */
  maxEjectedShare?: number
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])

interface Health {
  failures: number
  ejectedUntil: number
  inFlight: number
}

/**
 * The instances of one service, kept current by a watch on the local agent (reconnecting with backoff
 * and serving the last known list meanwhile), with client-side load balancing: `pick` an instance, or
 * `fetch` a path on one, retried on another after a connection error or a 5xx, ejecting instances that
 * keep failing for a while (passive outlier detection). Emits `change` (an `Event`) on a new list.
 */
export class Service extends EventTarget {
  readonly slug: string
  readonly #client: RegistryClient
  readonly #options: Required<Omit<ServiceOptions, 'zone' | 'tags'>> & Pick<ServiceOptions, 'zone' | 'tags'>
  readonly #abort = new AbortController()
  readonly #health = new Map<string, Health>()
  #instances: Instance[] = []
  #zones = new Map<string, string | undefined>()
  #next = 0
  // Not Promise.withResolvers: the client runs on Node 20, which has not got it.
  #markReady!: () => void
  readonly #ready = new Promise<void>((resolve) => {
    this.#markReady = resolve
  })

  constructor(client: RegistryClient, slug: string, options: ServiceOptions = {}) {
    super()
    this.slug = slug
    this.#client = client
    this.#options = {
      strategy: 'round-robin',
      healthyOnly: true,
      retries: 2,
      ejectAfterFailures: 3,
      ejectForMs: 30_000,
      maxEjectedShare: 0.5,
      ...options,
    }
    void this.#follow('instances')
    if (options.zone !== undefined) void this.#follow('nodes')
    else this.#zones = new Map()
  }

  /** Resolves once the first list arrived from the agent. */
  ready(): Promise<void> {
    return this.#ready
  }

  /** The instances as last heard (all statuses), by id. */
  instances(): readonly Instance[] {
    return this.#instances
  }

  /** The instance the next call should go to, or undefined when there is none to call. */
  pick(exclude?: ReadonlySet<string>): Instance | undefined {
    const candidates = this.#candidates(exclude)
    if (candidates.length === 0) return undefined
    switch (this.#options.strategy) {
      case 'random':
        return candidates[Math.floor(Math.random() * candidates.length)]
      case 'p2c': {
        const a = candidates[Math.floor(Math.random() * candidates.length)]!
        const b = candidates[Math.floor(Math.random() * candidates.length)]!
        return this.#healthOf(a.id).inFlight <= this.#healthOf(b.id).inFlight ? a : b
      }
      default:
        return candidates[this.#next++ % candidates.length]
    }
  }

  /**
   * `fetch` of `path` on a picked instance (its URL joined with `path`). After a connection error or a
   * 5xx it tries another instance, up to `retries` more, for idempotent methods (or any, with
   * `retryAnyMethod`). Resolves with the last answer; rejects with `NoInstanceError` when there was
   * none to call, or the last connection error.
   */
  async fetch(path: string, init: RequestInit & { retryAnyMethod?: boolean } = {}): Promise<Response> {
    const method = (init.method ?? 'GET').toUpperCase()
    const attempts = 1 + (IDEMPOTENT.has(method) || init.retryAnyMethod ? this.#options.retries : 0)
    const tried = new Set<string>()
    let last: Response | Error = new NoInstanceError(`no instance of "${this.slug}" to call`)
    for (let attempt = 0; attempt < attempts; attempt++) {
      const instance = this.pick(tried)
      if (instance === undefined) break
      tried.add(instance.id)
      const health = this.#healthOf(instance.id)
      health.inFlight++
      try {
        const response = await fetch(joinUrl(instance.url, path), init)
        if (response.status < 500) {
          health.failures = 0
          return response
        }
        this.#failed(instance.id)
        last = response
      } catch (err) {
        if (init.signal?.aborted) throw err
        this.#failed(instance.id)
        last = err as Error
      } finally {
        health.inFlight--
      }
    }
    if (last instanceof Response) return last
    throw last
  }

  /** Stops watching. */
  close(): void {
    this.#abort.abort()
  }

  #candidates(exclude?: ReadonlySet<string>): Instance[] {
    const now = Date.now()
    const { tags, healthyOnly, zone } = this.#options
    let list = this.#instances.filter(
      (i) => !exclude?.has(i.id) && (tags ?? []).every((t) => (i.tags ?? []).includes(t)),
    )
    if (healthyOnly) {
      const healthy = list.filter((i) => i.status === 'Healthy')
      list = healthy.length > 0 ? healthy : list.filter((i) => i.status === 'Degraded')
    }
    const usable = list.filter((i) => this.#healthOf(i.id).ejectedUntil <= now)
    if (usable.length > 0) list = usable
    if (zone !== undefined) {
      const local = list.filter((i) => i.nodeUrl !== undefined && this.#zones.get(i.nodeUrl) === zone)
      if (local.length > 0) list = local
    }
    return list
  }

  #healthOf(id: string): Health {
    let health = this.#health.get(id)
    if (health === undefined) {
      health = { failures: 0, ejectedUntil: 0, inFlight: 0 }
      this.#health.set(id, health)
    }
    return health
  }

  /** Counts a failure; ejects the instance after enough in a row, within the share that may be ejected. */
  #failed(id: string): void {
    const health = this.#healthOf(id)
    health.failures++
    if (health.failures < this.#options.ejectAfterFailures) return
    const now = Date.now()
    const ejected = [...this.#health.values()].filter((h) => h.ejectedUntil > now).length
    if (ejected + 1 > Math.max(1, Math.floor(this.#instances.length * this.#options.maxEjectedShare))) return
    health.ejectedUntil = now + this.#options.ejectForMs
    health.failures = 0
  }

  /**
   * Keeps one watch open, reconnecting with backoff (100 ms doubling to 5 s). A new stream starts with
   * the whole answer, not from the last index: a restarted agent counts indexes afresh.
   */
  async #follow(what: 'instances' | 'nodes'): Promise<void> {
    let backoffMs = 100
    while (!this.#abort.signal.aborted) {
      try {
        await this.#client.watch<Instance[] | NodeRecord[]>(
          what,
          what === 'instances' ? { slug: this.slug } : {},
          (answer) => {
            backoffMs = 100
            if (what === 'instances') {
              this.#instances = answer as Instance[]
              this.#markReady()
              this.dispatchEvent(new Event('change'))
            } else {
              this.#zones = new Map((answer as NodeRecord[]).map((n) => [n.url, n.availabilityZone]))
            }
          },
          this.#abort.signal,
        )
      } catch {
        // Unreachable agent or a refused watch: the last list stays in use; try again shortly.
      }
      if (this.#abort.signal.aborted) return
      await new Promise((resolve) => setTimeout(resolve, backoffMs))
      backoffMs = Math.min(backoffMs * 2, 5_000)
    }
  }
}

function joinUrl(base: string, path: string): string {
  if (path === '') return base
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`
}
