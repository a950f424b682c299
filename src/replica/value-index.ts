/**
 * A secondary index: field value → ids of the entities holding it, plus a cached id-ordered list of
 * those entities per value. Most values of `url`, `ip` or `host` belong to a single entity, so a lone
 * id is stored as a plain string; a Set (a "bucket") is made only for shared values like a slug.
 *
 * The cached list is what makes a lookup by slug cost a Map get instead of a sort: it is built on the
 * first lookup and dropped whenever the bucket gains or loses a member (a replaced entity is removed and
 * re-added, so any change to a member drops it too).
 */
interface Bucket<T> {
  ids: Set<string>
  sorted: T[] | undefined
}

export class ValueIndex<T extends { id: string }> {
  readonly #entries = new Map<string, string | Bucket<T>>()

  add(value: string, id: string): void {
    const held = this.#entries.get(value)
    if (held === undefined) this.#entries.set(value, id)
    else if (typeof held === 'string') {
      if (held !== id) this.#entries.set(value, { ids: new Set([held, id]), sorted: undefined })
    } else {
      held.ids.add(id)
      held.sorted = undefined
    }
  }

  remove(value: string, id: string): void {
    const held = this.#entries.get(value)
    if (held === undefined) return
    if (typeof held === 'string') {
      if (held === id) this.#entries.delete(value)
      return
    }
    held.ids.delete(id)
    held.sorted = undefined
    if (held.ids.size === 1) this.#entries.set(value, held.ids.values().next().value!)
  }

  /** How many entities hold `value`. */
  count(value: string): number {
    const held = this.#entries.get(value)
    return held === undefined ? 0 : typeof held === 'string' ? 1 : held.ids.size
  }

  /** The entities holding `value`, ordered by id. The array is shared: callers must not mutate it. */
  sorted(value: string, get: (id: string) => T): readonly T[] {
    const held = this.#entries.get(value)
    if (held === undefined) return []
    if (typeof held === 'string') return [get(held)]
    held.sorted ??= [...held.ids].map(get).sort(byId)
    return held.sorted
  }

  clear(): void {
    this.#entries.clear()
  }
}

export function byId(a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}
