import type { Instance, InstanceStatus } from '../model/index.ts'
import { byId, ValueIndex } from './value-index.ts'

/** Filters of `GET /registry-svc/instances`; every given one must match (AND). */
export interface InstanceFilter {
  id?: string
  slug?: string
  url?: string
  host?: string
  ip?: string
  scheme?: string
  path?: string
  deploymentId?: string
  tag?: string
  status?: InstanceStatus
}

/** The instance fields with a secondary index: lookups by them never scan the replica. */
const INDEXED = ['slug', 'url', 'host', 'ip', 'deploymentId'] as const
type IndexedField = (typeof INDEXED)[number] | 'tag'

/**
 * Live instances by id plus secondary indexes (slug, url, host, ip, deploymentId, tag). Kept in memory
 * and rebuilt from the store on open; only the replica mutates it.
 */
export class InstanceIndex {
  readonly #byId = new Map<string, Instance>()
  readonly #indexes: Record<IndexedField, ValueIndex<Instance>> = {
    slug: new ValueIndex(),
    url: new ValueIndex(),
    host: new ValueIndex(),
    ip: new ValueIndex(),
    deploymentId: new ValueIndex(),
    tag: new ValueIndex(),
  }
  readonly #get = (id: string) => this.#byId.get(id)!

  get size(): number {
    return this.#byId.size
  }

  get(id: string): Instance | undefined {
    return this.#byId.get(id)
  }

  /** Puts or replaces an instance (`instance` undefined removes `id`). */
  set(id: string, instance: Instance | undefined): void {
    const old = this.#byId.get(id)
    if (old) {
      this.#forEachIndexed(old, (index, value) => index.remove(value, id))
      this.#byId.delete(id)
    }
    if (!instance) return
    this.#byId.set(id, instance)
    this.#forEachIndexed(instance, (index, value) => index.add(value, id))
  }

  clear(): void {
    this.#byId.clear()
    for (const index of Object.values(this.#indexes)) index.clear()
  }

  /**
   * Instances matching every filter, ordered by id. Starts from the smallest index that applies; a
   * lookup by one indexed field returns that index's cached list as is (do not mutate it).
   */
  query(filter: InstanceFilter): readonly Instance[] {
    if (filter.id !== undefined) {
      const instance = this.#byId.get(filter.id)
      return instance && matches(instance, filter) ? [instance] : []
    }
    let best: { index: ValueIndex<Instance>; value: string; count: number } | undefined
    let filters = 0
    for (const field of [...INDEXED, 'tag'] as const) {
      const value = filter[field]
      if (value === undefined) continue
      filters++
      const index = this.#indexes[field]
      const count = index.count(value)
      if (count === 0) return []
      if (!best || count < best.count) best = { index, value, count }
    }
    if (!best) return [...this.#byId.values()].filter((i) => matches(i, filter)).sort(byId)
    const candidates = best.index.sorted(best.value, this.#get)
    const unindexed = filter.scheme !== undefined || filter.path !== undefined || filter.status !== undefined
    return filters === 1 && !unindexed ? candidates : candidates.filter((i) => matches(i, filter))
  }

  #forEachIndexed(instance: Instance, visit: (index: ValueIndex<Instance>, value: string) => void): void {
    for (const field of INDEXED) {
      const value = instance[field]
      if (value !== undefined) visit(this.#indexes[field], value)
    }
    for (const tag of instance.tags ?? []) visit(this.#indexes.tag, tag)
  }
}

function matches(instance: Instance, filter: InstanceFilter): boolean {
  return (
    (filter.id === undefined || instance.id === filter.id) &&
    (filter.slug === undefined || instance.slug === filter.slug) &&
    (filter.url === undefined || instance.url === filter.url) &&
    (filter.host === undefined || instance.host === filter.host) &&
    (filter.ip === undefined || instance.ip === filter.ip) &&
    (filter.scheme === undefined || instance.scheme === filter.scheme) &&
    (filter.path === undefined || instance.path === filter.path) &&
    (filter.deploymentId === undefined || instance.deploymentId === filter.deploymentId) &&
    (filter.tag === undefined || (instance.tags ?? []).includes(filter.tag)) &&
    (filter.status === undefined || instance.status === filter.status)
  )
}
