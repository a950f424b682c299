import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Static } from '@sinclair/typebox'
import { normalisePath } from '../model/address.ts'
import type { Instance, Node } from '../model/index.ts'
import type { Change } from '../replica/change.ts'
import type { InstanceFilter } from '../replica/indexes.ts'
import type { Replica } from '../replica/replica.ts'
import { type HttpLiveness, LIVENESS_EVENTS, LivenessOverlay, type NodeView } from './liveness-overlay.ts'
import { ResponseCache, type ResponseCacheInit } from './response-cache.ts'
import type { InstanceQuerySchema } from './schemas.ts'

export type InstanceQuery = Omit<Static<typeof InstanceQuerySchema>, 'index' | 'wait'>

/** An answer with the index at which it last changed (`X-Registry-Index`, SSE event ids). */
export interface IndexedAnswer {
  bytes: Buffer
  index: number
}

export interface ReadModelEvents {
  /** Instance answers may have changed (a write merged, or a node's liveness changed); `index` is new. */
  instances: [index: number]
  /** The node list may have changed (a record, membership or liveness; not a beat); `index` is new. */
  nodes: [index: number]
  /** The services summary may have changed (at most every SERVICES_EVERY_MS). */
  services: [index: number]
  /** A definition was written or deleted. */
  definitions: [index: number]
}

/** The services summary is rebuilt and announced at most this often, ms. */
const SERVICES_EVERY_MS = 250

/** Answers whose index is remembered (per normalized query); beyond it, the oldest are forgotten. */
const MAX_TRACKED_ANSWERS = 4096

export interface ReadModelComponents {
  replica: Replica
  liveness?: HttpLiveness | undefined
}

/** The query parameters in key order: the cache key lists their values in this order. */
const QUERY_KEYS = [
  'id',
  'slug',
  'url',
  'host',
  'ip',
  'scheme',
  'path',
  'deploymentId',
  'tag',
  'status',
] as const

/**
 * What the read routes answer, built from the replica and the liveness view. List answers are
 * serialized once per change, not once per request: the bytes of an instance lookup are cached per
 * normalized query (bounded LRU, `ResponseCache`) and the definition list is cached whole; both are
 * dropped when the replica announces a change of that kind, or when a liveness transition changes
 * which nodes are unreachable (their instances are answered as `Unreachable`).
 *
 * Node answers are not cached: their `lastHeartbeat` moves with every beat heard, which the replica
 * does not announce, and the node list is small.
 */
export class ReadModel extends EventEmitter<ReadModelEvents> {
  readonly instanceAnswers: ResponseCache
  /**
   * Counters of this agent, bumped whenever instance answers (or the node list) may have changed. An
   * answer's index is the counter's value when its bytes last changed; indexes are compared only with
   * indexes from the same agent.
   */
  #instancesIndex = 1
  #nodesIndex = 1
  /**
   * Normalized query → a hash of its last answer and the index it took: what blocking queries and
   * watches compare. Hashes, not the answers, so tracking 4,096 queries costs kilobytes whatever their
   * size; the last answer is only weakly held, to skip hashing while it is still the cached one.
   */
  readonly #answered = new Map<string, { hash: string; index: number; last: WeakRef<Buffer> }>()
  #nodesAnswered: IndexedAnswer | undefined
  #servicesAnswered: IndexedAnswer | undefined
  #servicesIndex = 1
  #servicesBuiltAt = 0
  #servicesTimer: NodeJS.Timeout | undefined
  #servicesAnnouncedAt = 0
  #definitionsIndex = 1
  /** The nodes index `#nodesAnswered` was last checked at. */
  #nodesBuiltAt = 0
  readonly #replica: Replica
  readonly #liveness: HttpLiveness | undefined
  readonly #overlay: LivenessOverlay
  #definitionsAnswer: Buffer | undefined

  constructor(init: ResponseCacheInit, components: ReadModelComponents) {
    super()
    this.setMaxListeners(0)
    this.instanceAnswers = new ResponseCache(init)
    this.#replica = components.replica
    this.#liveness = components.liveness
    this.#overlay = new LivenessOverlay(components.liveness)
    this.#overlay.refresh(this.#replica.nodes())
    this.#replica.on('change', this.#onChange)
    for (const event of LIVENESS_EVENTS) this.#liveness?.on(event, this.#onLiveness)
  }

  /** Stops listening to the replica and the liveness component. */
  close(): void {
    clearTimeout(this.#servicesTimer)
    this.#replica.off('change', this.#onChange)
    for (const event of LIVENESS_EVENTS) this.#liveness?.off?.(event, this.#onLiveness)
  }

  /** `{"instances": [...]}` for a validated query, as bytes. */
  instancesAnswer(query: InstanceQuery): Buffer {
    const { key, filter, pathless } = this.#normalize(query)
    return this.instanceAnswers.get(key, () => this.#buildInstances(filter, pathless))
  }

  /** The answer to a query with the index at which it last changed. */
  indexedInstances(query: InstanceQuery): IndexedAnswer {
    const { key, filter, pathless } = this.#normalize(query)
    const bytes = this.instanceAnswers.get(key, () => this.#buildInstances(filter, pathless))
    const known = this.#answered.get(key)
    if (known?.last.deref() === bytes) return { bytes, index: known.index }
    const hash = createHash('sha1').update(bytes).digest('base64')
    if (known !== undefined && known.hash === hash) {
      known.last = new WeakRef(bytes)
      return { bytes, index: known.index }
    }
    this.#answered.delete(key)
    this.#answered.set(key, { hash, index: this.#instancesIndex, last: new WeakRef(bytes) })
    if (this.#answered.size > MAX_TRACKED_ANSWERS) this.#answered.delete(this.#answered.keys().next().value!)
    return { bytes, index: this.#instancesIndex }
  }

  /** The current instances index (see `indexedInstances`). */
  get instancesIndex(): number {
    return this.#instancesIndex
  }

  /**
   * `{"nodes": [...]}` as a watch sends it: each record with this agent's `liveness`, and the record's
   * own `lastHeartbeat` (not the last beat heard, which moves every second), with its index.
   */
  indexedNodes(): IndexedAnswer {
    // Built once per index, however many watchers ask: nothing it shows changes between bumps.
    if (this.#nodesAnswered !== undefined && this.#nodesBuiltAt === this.#nodesIndex)
      return this.#nodesAnswered
    this.#nodesBuiltAt = this.#nodesIndex
    const bytes = Buffer.from(
      JSON.stringify({
        // As the list route answers them, but with the record's own lastHeartbeat.
        nodes: this.#replica
          .nodes()
          .map((node) => ({ ...this.#overlay.node(node), lastHeartbeat: node.lastHeartbeat })),
      }),
    )
    if (this.#nodesAnswered?.bytes.equals(bytes)) return this.#nodesAnswered
    this.#nodesAnswered = { bytes, index: this.#nodesIndex }
    return this.#nodesAnswered
  }

  #normalize(query: InstanceQuery): { key: string; filter: InstanceFilter; pathless: boolean } {
    const filter: InstanceFilter = { ...query }
    // Normalised as the model normalises stored instances, so `scheme=HTTP` and `path=api` match.
    if (filter.scheme !== undefined) filter.scheme = filter.scheme.toLowerCase()
    let pathless = false
    if (filter.path !== undefined) {
      filter.path = normalisePath(filter.path)
      pathless = filter.path === undefined // `path=` or `path=/`: instances without a path
    }
    let key = ''
    for (const name of QUERY_KEYS) {
      const value = name === 'path' && pathless ? '/' : filter[name]
      key += value === undefined ? '&' : `${encodeURIComponent(value)}&`
    }
    return { key, filter, pathless }
  }

  /**
   * `{"services": [{slug, instances, statuses: {Healthy: n, ...}}, ...]}` by slug: every slug with its
   * instance counts by status as answered (instances without a slug under ""). What the dashboard lists;
   * built once per index, and announced (`services`) at most every SERVICES_EVERY_MS, since it reads
   * every instance.
   */
  indexedServices(): IndexedAnswer {
    if (this.#servicesAnswered !== undefined && this.#servicesBuiltAt === this.#servicesIndex)
      return this.#servicesAnswered
    this.#servicesBuiltAt = this.#servicesIndex
    const bySlug = new Map<string, { slug: string; instances: number; statuses: Record<string, number> }>()
    for (const instance of this.instances({})) {
      const slug = instance.slug ?? ''
      let row = bySlug.get(slug)
      if (row === undefined) {
        row = { slug, instances: 0, statuses: {} }
        bySlug.set(slug, row)
      }
      row.instances++
      row.statuses[instance.status] = (row.statuses[instance.status] ?? 0) + 1
    }
    const services = [...bySlug.values()].sort((a, b) => (a.slug < b.slug ? -1 : a.slug > b.slug ? 1 : 0))
    const bytes = Buffer.from(JSON.stringify({ services }))
    if (!this.#servicesAnswered?.bytes.equals(bytes))
      this.#servicesAnswered = { bytes, index: this.#servicesIndex }
    return this.#servicesAnswered
  }

  /** `{"definitions": [...]}` with the index at which it last changed. */
  indexedDefinitions(): IndexedAnswer {
    return { bytes: this.definitionsAnswer(), index: this.#definitionsIndex }
  }

  /** `{"definitions": [...]}` as bytes. */
  definitionsAnswer(): Buffer {
    this.#definitionsAnswer ??= Buffer.from(`{"definitions":${JSON.stringify(this.#replica.definitions())}}`)
    return this.#definitionsAnswer
  }

  /** Nodes by id (every node when `ids` is absent or empty), ordered by id. */
  nodes(ids?: readonly string[]): NodeView[] {
    return this.#replica.nodes(ids).map((node) => this.#overlay.node(node))
  }

  /** One instance as answered (see `instances`). */
  instance(id: string): Instance | undefined {
    return this.instances({ id })[0]
  }

  node(id: string): NodeView | undefined {
    const node = this.#replica.get('node', id)
    return node === undefined ? undefined : this.#overlay.node(node)
  }

  /** What to answer for a node with no record yet (this agent before its first heartbeat write). */
  unrecordedNode(id: string, url: string): NodeView {
    return this.#overlay.node({ id, url } as Node)
  }

  /** Instances matching `filter` as answered: `Unreachable` when their node is (DNS uses this too). */
  instances(filter: InstanceFilter): readonly Instance[] {
    if (this.#overlay.unreachableUrls.size === 0) return this.#replica.instances(filter)
    // Status is filtered as answered, after the overlay.
    const { status, ...rest } = filter
    const list = this.#replica.instances(rest).map((i) => this.#overlay.instance(i))
    return status === undefined ? list : list.filter((i) => i.status === status)
  }

  #buildInstances(filter: InstanceFilter, pathless: boolean): Buffer {
    let list = this.instances(filter)
    if (pathless) list = list.filter((i) => i.path === undefined)
    return Buffer.from(`{"instances":${JSON.stringify(list)}}`)
  }

  readonly #onChange = (changes: Change[]): void => {
    let instances = false
    let nodes = false
    for (const change of changes) {
      if (change.kind === 'instance') instances = true
      else if (change.kind === 'definition') {
        this.#definitionsAnswer = undefined
        this.#definitionsIndex++
        this.emit('definitions', this.#definitionsIndex)
      } else nodes = true
    }
    // A node record that appears, goes or changes URL can change which instances are unreachable,
    // and whose word an instance's health is (replica/instance-trust.ts).
    if (nodes) {
      this.#overlay.refresh(this.#replica.nodes())
      instances = true
      this.#bumpNodes()
    }
    if (instances) this.#bumpInstances()
  }

  readonly #onLiveness = (): void => {
    if (this.#overlay.refresh(this.#replica.nodes())) this.#bumpInstances()
    this.#bumpNodes()
  }

  #bumpInstances(): void {
    this.instanceAnswers.clear()
    this.#instancesIndex++
    this.emit('instances', this.#instancesIndex)
    // The services summary reads every instance: announced at most every SERVICES_EVERY_MS.
    this.#servicesTimer ??= setTimeout(
      () => {
        this.#servicesTimer = undefined
        this.#servicesAnnouncedAt = Date.now()
        this.#servicesIndex = this.#instancesIndex
        this.emit('services', this.#servicesIndex)
      },
      Math.max(0, this.#servicesAnnouncedAt + SERVICES_EVERY_MS - Date.now()),
    ).unref()
  }

  #bumpNodes(): void {
    this.#nodesIndex++
    this.emit('nodes', this.#nodesIndex)
  }
}
