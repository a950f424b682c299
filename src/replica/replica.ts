import { EventEmitter } from 'node:events'
import {
  type Definition,
  type Entity,
  type EntityKind,
  type Instance,
  type Node,
  normaliseNodeUrl,
  parseEntity,
} from '../model/index.ts'
import { emitSafely } from '../support/emit-safely.ts'
import type { Logger } from '../support/logger.ts'
import { type Change, checkVersion, decodeEntry, encodeEntry, entityKey } from './change.ts'
import { DigestTree, LEAF_COUNT, leafOf } from './digest.ts'
import type { HybridClock } from './hlc.ts'
import { type InstanceFilter, InstanceIndex } from './indexes.ts'
import { instanceView, trustChanged } from './instance-trust.ts'
import { compareChanges } from './lww.ts'
import { checkNodeSignature, isSignedNodeRecord, type NodeSigner } from './node-signature.ts'
import type { ReplicaStore } from './store.ts'
import { byId } from './value-index.ts'
import { compareVersions, type Version } from './version.ts'

/**
 * What merging one change did. Doubles as a log field and a metric label.
 * - `applied`: it won and is now in the replica.
 * - `stale`: the replica already holds a newer version of that entity.
 * - `duplicate`: the replica already holds exactly this change.
 * - `rejected-drift`: its clock is further ahead of ours than the maximum drift.
 * - `rejected-owner`: a put of a node record by some other node (only a node writes its own record),
 *   or signed with another key than the node's record held here (a change of key needs a delete first).
 * - `rejected-signature`: a node record whose signature does not verify.
 * - `rejected-quota`: it would add an entity of a kind that already has `maxEntities` entries.
 * - `expired`: a tombstone older than the grace period for an entity we do not hold.
 */
export const APPLY_OUTCOMES = [
  'applied',
  'stale',
  'duplicate',
  'rejected-drift',
  'rejected-owner',
  'rejected-signature',
  'rejected-quota',
  'expired',
] as const
export type ApplyOutcome = (typeof APPLY_OUTCOMES)[number]

export const DEFAULT_TOMBSTONE_GRACE_MS = 7 * 24 * 60 * 60 * 1000
/**
 * Entries (entities and tombstones) held per kind. An instance costs about 1 KB of memory, so the
 * default bounds a replica near 200 MB per kind, whatever a peer sends.
 */
export const DEFAULT_MAX_ENTITIES = 200_000

/**
 * Changes merged per `apply` call by gossip and anti-entropy: big enough to amortise the store write,
 * small enough that lookups are answered between batches (each batch ends with an async LevelDB write).
 */
export const APPLY_BATCH = 1000

/** A local write refused because its kind is at `maxEntities`. */
export class QuotaError extends Error {
  override readonly name = 'QuotaError'
  readonly kind: EntityKind
  readonly limit: number

  constructor(kind: EntityKind, limit: number) {
    super(`the replica holds ${limit} ${kind} entries, its limit (OB_MAX_ENTITIES); delete some first`)
    this.kind = kind
    this.limit = limit
  }
}

export interface ReplicaInit {
  store: ReplicaStore
  clock: HybridClock
  /**
   * How long a tombstone is kept before it is purged, in ms. Must exceed the longest time a replica can
   * be out of touch and still come back with its old state (agents away longer drop their replica).
   * @default 7 days
   */
  tombstoneGraceMs?: number
  /** Wall-clock source for purge decisions; tests hand in a fake. @default Date.now */
  now?: () => number
  /** Where a `change` listener that throws is reported (the write it announces stays durable). */
  log: Logger
  /** Most entries (entities and tombstones) held per kind; a change adding one more is refused. @default DEFAULT_MAX_ENTITIES */
  maxEntities?: number
  /**
   * Signs this node's own record and status writes (`node-signature.ts`); without one they are written
   * unsigned (tests of other rules; peers that hold a signed record of this node then refuse them).
   */
  signer?: NodeSigner
}

/** Where merged changes came from: local writes are gossiped, the others were heard from peers. */
export type ChangeSource = 'local' | 'gossip' | 'sync'

export interface ReplicaEvents {
  /** Changes that altered the replica, after they are durable and visible to reads. */
  change: [changes: Change[], source: ChangeSource]
}

/**
 * An entry in memory. Its encoded form is not kept (that would double the memory per entity); it is
 * canonical, so it can be recomputed when the digest needs the old bytes of a replaced entry.
 */
interface Held {
  change: Change
  /** Set while the entry is being merged or loaded, dropped once it is held. */
  encoded?: string
}

export interface ReplicaCounts {
  definitions: number
  instances: number
  nodes: number
  tombstones: number
}

/**
 * The local copy of the registry: every entity and tombstone with its version, in a `ReplicaStore`,
 * with in-memory indexes for lookups and a digest tree for anti-entropy.
 *
 * All writes go through `apply` (remote changes) or `put`/`remove` (local writes), one batch at a time:
 * a batch is merged by the LWW rule (`lww.ts`), written to the store atomically, and only then made
 * visible to reads and announced with a `change` event.
 */
export class Replica extends EventEmitter<ReplicaEvents> {
  readonly clock: HybridClock
  readonly digestTree = new DigestTree()
  readonly tombstoneGraceMs: number
  readonly maxEntities: number
  readonly #store: ReplicaStore
  readonly #now: () => number
  readonly #log: Logger
  readonly #signer: NodeSigner | undefined
  readonly #held = new Map<string, Held>()
  readonly #leafKeys: Array<Set<string>> = Array.from({ length: LEAF_COUNT }, () => new Set())
  readonly #tombstones = new Set<string>()
  /** Entries held per kind, tombstones included (what `maxEntities` bounds). */
  readonly #heldByKind: Record<EntityKind, number> = { definition: 0, instance: 0, node: 0 }
  readonly #definitions = new Map<string, Definition>()
  readonly #instances = new InstanceIndex()
  readonly #nodes = new Map<string, Node>()
  readonly #nodeIdByUrl = new Map<string, string>()
  /** Instance ids by normalised `nodeUrl`: whose view to recompute when that node's record changes. */
  readonly #instanceIdsByNodeUrl = new Map<string, Set<string>>()
  #queue: Promise<unknown> = Promise.resolve()

  private constructor(init: ReplicaInit) {
    super()
    this.#store = init.store
    this.clock = init.clock
    this.tombstoneGraceMs = init.tombstoneGraceMs ?? DEFAULT_TOMBSTONE_GRACE_MS
    this.maxEntities = init.maxEntities ?? DEFAULT_MAX_ENTITIES
    this.#now = init.now ?? Date.now
    this.#log = init.log
    this.#signer = init.signer
  }

  /** Opens the store and loads every entry into memory; the clock is raised above all stored versions. */
  static async open(init: ReplicaInit): Promise<Replica> {
    const replica = new Replica(init)
    await init.store.open()
    for await (const [key, encoded] of init.store.entries()) {
      const stored = decodeEntry(key, encoded)
      // Stored JSON has sorted keys (canonical bytes); answers use the model's field order, as before a
      // restart, so every agent answers the same state with the same bytes.
      const change =
        stored.value === null ? stored : { ...stored, value: parseEntity(stored.kind, stored.value) }
      replica.#hold(key, { change, encoded })
      replica.clock.observe(change.version)
    }
    return replica
  }

  async close(): Promise<void> {
    await this.#serial(() => this.#store.close())
  }

  /** Merges changes heard from peers. Returns one outcome per change, in order. */
  apply(
    changes: readonly Change[],
    source: Exclude<ChangeSource, 'local'> = 'sync',
  ): Promise<ApplyOutcome[]> {
    return this.#serial(() => this.#merge(changes, source))
  }

  /** A local write of a whole entity. Resolves once durable, with the change to gossip. */
  put(kind: EntityKind, value: Entity): Promise<Change> {
    return this.#serial(async () => {
      const version = await this.clock.next()
      const own = kind === 'node' && this.#signer !== undefined && value.id === this.#signer.nodeId
      const signed = own ? this.#signer!.sign(value as Node, version) : value
      const change: Change = { kind, id: value.id, version, value: signed }
      const [outcome] = await this.#merge([change], 'local')
      if (outcome === 'rejected-quota') throw new QuotaError(kind, this.maxEntities)
      if (outcome !== 'applied') throw new Error(`local write of ${kind} ${value.id} was ${outcome}`)
      return change
    })
  }

  /**
   * A local status write: `value` records a probe result for the instance as currently registered. It
   * is based on the current registration (see `compareChanges`), so it can never win over a delete or
   * re-registration made anywhere after that registration. `readFrom` is the registration `value` was
   * read from: when another has been merged since, `value` describes an older one and is not written
   * (it would carry that registration's fields past the newer one). Resolves with the change to
   * gossip, or undefined when the instance is gone or was registered again (or a later write already won).
   */
  putStatus(value: Instance, readFrom?: Version): Promise<Change | undefined> {
    return this.#serial(async () => {
      const current = this.#held.get(entityKey('instance', value.id))?.change
      if (!current || current.value === null) return undefined
      const basedOn = current.basedOn ?? current.version
      if (readFrom !== undefined && compareVersions(readFrom, basedOn) !== 0) return undefined
      const version = await this.clock.next()
      const { signature: _stale, ...unsigned } = value
      const signed = this.#signer ? this.#signer.signStatus(unsigned, version, basedOn) : unsigned
      const change: Change = { kind: 'instance', id: value.id, version, value: signed, basedOn }
      const [outcome] = await this.#merge([change], 'local')
      return outcome === 'applied' ? change : undefined
    })
  }

  /** A local delete. Resolves with the tombstone to gossip, or undefined when there is no such entity. */
  remove(kind: EntityKind, id: string): Promise<Change | undefined> {
    return this.#serial(async () => {
      if (this.get(kind, id) === undefined) return undefined
      const change: Change = { kind, id, version: await this.clock.next(), value: null }
      await this.#merge([change], 'local')
      return change
    })
  }

  get(kind: 'definition', id: string): Definition | undefined
  get(kind: 'instance', id: string): Instance | undefined
  get(kind: 'node', id: string): Node | undefined
  get(kind: EntityKind, id: string): Entity | undefined
  get(kind: EntityKind, id: string): Entity | undefined {
    if (kind === 'definition') return this.#definitions.get(id)
    if (kind === 'instance') return this.#instances.get(id)
    return this.#nodes.get(id)
  }

  /** The stored change for a key (`<kind>/<id>`), tombstones included. */
  entry(key: string): Change | undefined {
    return this.#held.get(key)?.change
  }

  /** Every stored change (tombstones included) whose key falls in leaves [from, to). */
  entriesInLeaves(from: number, to: number): Change[] {
    const out: Change[] = []
    for (let leaf = from; leaf < to; leaf++) {
      for (const key of this.#leafKeys[leaf]!) out.push(this.#held.get(key)!.change)
    }
    return out
  }

  /** Every stored change, tombstones included. */
  *entries(): IterableIterator<Change> {
    for (const held of this.#held.values()) yield held.change
  }

  definitions(): Definition[] {
    return [...this.#definitions.values()].sort(byId)
  }

  /** Instances matching every filter, by id. May be a shared cached array: do not mutate it. */
  instances(filter: InstanceFilter = {}): readonly Instance[] {
    return this.#instances.query(filter)
  }

  /** Nodes by id (all of them when `ids` is absent or empty), ordered by id. */
  nodes(ids?: readonly string[]): Node[] {
    if (!ids || ids.length === 0) return [...this.#nodes.values()].sort(byId)
    const out: Node[] = []
    for (const id of new Set(ids)) {
      const node = this.#nodes.get(id)
      if (node) out.push(node)
    }
    return out.sort(byId)
  }

  /** The node whose record's URL is `url` (compared in `normaliseNodeUrl` form). */
  nodeByUrl(url: string): Node | undefined {
    const id = this.#nodeIdByUrl.get(normaliseNodeUrl(url))
    return id === undefined ? undefined : this.#nodes.get(id)
  }

  /** Hex digest of the whole replica: equal on two replicas exactly when their states are equal. */
  digest(): string {
    return this.digestTree.root()
  }

  counts(): ReplicaCounts {
    return {
      definitions: this.#definitions.size,
      instances: this.#instances.size,
      nodes: this.#nodes.size,
      tombstones: this.#tombstones.size,
    }
  }

  /** Drops tombstones older than the grace period. Returns how many were purged. */
  purgeTombstones(): Promise<number> {
    return this.#serial(async () => {
      const cutoff = this.#now() - this.tombstoneGraceMs
      const expired = [...this.#tombstones].filter((key) => this.#held.get(key)!.change.version.ts < cutoff)
      if (expired.length === 0) return 0
      await this.#store.write([], expired)
      for (const key of expired) this.#release(key)
      return expired.length
    })
  }

  /**
   * Forgets every entry, on disk and in memory (a node away past the grace period starts afresh).
   * Announced as deletions of every live entity, so caches and watchers drop them too.
   */
  clear(): Promise<void> {
    return this.#serial(async () => {
      await this.#store.clearEntries()
      const released: Change[] = []
      for (const [key, { change }] of [...this.#held]) {
        this.#release(key)
        if (change.value !== null) released.push({ ...change, value: null })
      }
      if (released.length > 0) this.#announce(released, 'sync')
    })
  }

  getMeta(key: string): Promise<string | undefined> {
    return this.#store.getMeta(key)
  }

  putMeta(key: string, value: string): Promise<void> {
    return this.#store.putMeta(key, value)
  }

  /** Runs `task` after every earlier write has finished: batches never interleave. */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task)
    this.#queue = run.catch(() => undefined)
    return run
  }

  async #merge(changes: readonly Change[], source: ChangeSource): Promise<ApplyOutcome[]> {
    const expiredBefore = this.#now() - this.tombstoneGraceMs
    // key → winning change so far in this batch; null = remove the key outright (see 'expired').
    const staged = new Map<string, Held | null>()
    // New keys staged in this batch, per kind, for the quota.
    const added: Partial<Record<EntityKind, number>> = {}
    const outcomes = changes.map((change): ApplyOutcome => {
      const key = entityKey(change.kind, change.id)
      const current = staged.has(key) ? staged.get(key) : this.#held.get(key)
      if (change.kind === 'node' && change.value !== null) {
        const verdict = checkNodeRecord(change, current?.change)
        if (verdict !== 'ok') return verdict
      }
      if (source === 'local') {
        // Our own versions pass the range checks a peer applies (decodeChange); the drift bound is a
        // peer's view of our clock, which after a wall-clock step back may run ahead of our own.
        checkVersion(change.version, 'version')
      } else if (this.clock.receive(change.version) === 'rejected-drift') {
        return 'rejected-drift'
      }
      let encoded: string | undefined
      if (current) {
        // Bytes are only needed on a tie; the ones computed for ours are kept for the store write.
        const order = compareChanges(change, current.change, (c) => {
          if (c !== change) return current.encoded ?? encodeEntry(current.change)
          encoded ??= encodeEntry(change)
          return encoded
        })
        if (order < 0) return 'stale'
        if (order === 0) return 'duplicate'
      }
      if (!current && this.#heldByKind[change.kind] + (added[change.kind] ?? 0) >= this.maxEntities) {
        return 'rejected-quota'
      }
      if (change.value === null && change.version.ts < expiredBefore) {
        // A tombstone past its grace period is not stored (replicas that kept it have purged it by now),
        // but it still deletes the older entity it was written against.
        if (!current) return 'expired'
        staged.set(key, null)
        return 'applied'
      }
      if (!current) added[change.kind] = (added[change.kind] ?? 0) + 1
      staged.set(key, { change, encoded: encoded ?? encodeEntry(change) })
      return 'applied'
    })
    if (staged.size === 0) return outcomes

    const puts: Array<[string, string]> = []
    const deletes: string[] = []
    for (const [key, held] of staged) {
      if (held) puts.push([key, held.encoded!])
      else if (this.#held.has(key)) deletes.push(key)
    }
    await this.#store.write(puts, deletes)

    const announced: Change[] = []
    for (const [key, held] of staged) {
      if (held) {
        this.#hold(key, held)
        announced.push(held.change)
      } else {
        const gone = this.#held.get(key)
        if (!gone) continue
        this.#release(key)
        announced.push({ ...gone.change, value: null })
      }
    }
    if (announced.length > 0) this.#announce(announced, source)
    return outcomes
  }

  /** Emits `change` once the changes are durable: a listener that throws is logged, never fails the write. */
  #announce(changes: Change[], source: ChangeSource): void {
    emitSafely(this, this.#log, 'replica change', 'change', [changes, source])
  }

  /** Puts an entry into memory: map, digest, leaf membership, indexes. Replaces what was there. */
  #hold(key: string, { change, encoded }: Held): void {
    const old = this.#held.get(key)
    if (old) this.digestTree.toggle(key, encodeEntry(old.change))
    else {
      this.#leafKeys[leafOf(key)]!.add(key)
      this.#heldByKind[change.kind]++
    }
    this.#held.set(key, { change })
    this.digestTree.toggle(key, encoded ?? encodeEntry(change))
    if (change.value === null) this.#tombstones.add(key)
    else this.#tombstones.delete(key)
    this.#index(change.kind, change.id, change.value, change)
  }

  /** Removes an entry from memory entirely. */
  #release(key: string): void {
    const old = this.#held.get(key)
    if (!old) return
    this.digestTree.toggle(key, encodeEntry(old.change))
    this.#leafKeys[leafOf(key)]!.delete(key)
    this.#heldByKind[old.change.kind]--
    this.#held.delete(key)
    this.#tombstones.delete(key)
    this.#index(old.change.kind, old.change.id, null)
  }

  /** Updates the indexes for an entry now held (`change`, with `value` its value) or released (null). */
  #index(kind: EntityKind, id: string, value: Entity | null, change?: Change): void {
    if (kind === 'instance') {
      const old = this.#instances.get(id)
      if (old?.nodeUrl !== undefined) this.#byNodeUrl(old.nodeUrl, id, false)
      const held = value === null ? undefined : change
      this.#instances.set(id, held && this.#view(held))
      if (held && (value as Instance).nodeUrl !== undefined)
        this.#byNodeUrl((value as Instance).nodeUrl!, id, true)
    } else if (kind === 'definition') {
      if (value) this.#definitions.set(id, value as Definition)
      else this.#definitions.delete(id)
    } else {
      const old = this.#nodes.get(id)
      const oldUrl = old && normaliseNodeUrl(old.url)
      if (oldUrl !== undefined && this.#nodeIdByUrl.get(oldUrl) === id) this.#nodeIdByUrl.delete(oldUrl)
      if (value) {
        this.#nodes.set(id, value as Node)
        this.#nodeIdByUrl.set(normaliseNodeUrl((value as Node).url), id)
      } else {
        this.#nodes.delete(id)
      }
      if (trustChanged(old, (value as Node | null) ?? undefined)) {
        this.#review(oldUrl)
        if (value) this.#review(normaliseNodeUrl((value as Node).url))
      }
    }
  }

  /** The instance as answered: health shown only on its owner's word (`instance-trust.ts`). */
  #view(change: Change): Instance {
    return instanceView(
      change,
      (nodeId) => this.#nodes.get(nodeId),
      (url) => this.nodeByUrl(url),
    )
  }

  /** Recomputes the view of the instances on a node URL, after that node's record changed. */
  #review(nodeUrl: string | undefined): void {
    if (nodeUrl === undefined) return
    for (const id of this.#instanceIdsByNodeUrl.get(nodeUrl) ?? []) {
      this.#instances.set(id, this.#view(this.#held.get(entityKey('instance', id))!.change))
    }
  }

  #byNodeUrl(nodeUrl: string, id: string, add: boolean): void {
    const key = normaliseNodeUrl(nodeUrl)
    let ids = this.#instanceIdsByNodeUrl.get(key)
    if (add) {
      if (!ids) {
        ids = new Set()
        this.#instanceIdsByNodeUrl.set(key, ids)
      }
      ids.add(id)
    } else if (ids) {
      ids.delete(id)
      if (ids.size === 0) this.#instanceIdsByNodeUrl.delete(key)
    }
  }
}

/**
 * The rules for a put of a node record, besides the merge order: only the node writes it (its id is
 * the version's writer), a signature must verify, and a signed record must be signed with the key of
 * the signed record held (trust on first use: a node that changed its key is deleted by an operator,
 * then accepted afresh).
 */
function checkNodeRecord(change: Change, held: Change | undefined): ApplyOutcome | 'ok' {
  if (change.version.node !== change.id) return 'rejected-owner'
  const record = change.value as Node
  const signature = checkNodeSignature(record, change.version)
  if (signature === 'invalid') return 'rejected-signature'
  const heldRecord = held?.value as Node | null | undefined
  if (
    signature === 'valid' &&
    heldRecord &&
    isSignedNodeRecord(heldRecord) &&
    heldRecord.peerId !== record.peerId
  ) {
    return 'rejected-owner'
  }
  return 'ok'
}
