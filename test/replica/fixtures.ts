import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { pino } from 'pino'
import type { Definition, Instance } from '../../src/model/index.ts'
import { type Change, encodeEntry, entityKey } from '../../src/replica/change.ts'
import { HybridClock } from '../../src/replica/hlc.ts'
import { MemoryStore } from '../../src/replica/memory-store.ts'
import { Replica, type ReplicaInit } from '../../src/replica/replica.ts'
import type { ReplicaStore } from '../../src/replica/store.ts'
import type { Version } from '../../src/replica/version.ts'

export const NOW = Date.UTC(2026, 10, 27, 12, 0, 0)

export function instance(id: string, slug: string, extra: Partial<Instance> = {}): Instance {
  const port = 1000 + ((Number.parseInt(id.replace(/\D/g, ''), 10) || 0) % 60000)
  return {
    id,
    url: `http://127.0.${port % 250}.${port % 7}:${port}`,
    scheme: 'http',
    ip: `127.0.${port % 250}.${port % 7}`,
    port,
    slug,
    status: 'Unknown',
    lastHeartbeat: new Date(NOW).toISOString(),
    ...extra,
  }
}

/**
 * The status write of `value` by its owner `owner` (whose record URL must be `value.nodeUrl` for the
 * status to show), based on the registration with version `registration`; unsigned, as an owner
 * without a signed record writes it.
 */
export function ownedStatus(value: Instance, owner: string, registration: Version, ts: number): Change {
  return { kind: 'instance', id: value.id, version: { ts, c: 0, node: owner }, value, basedOn: registration }
}

export function definition(id: string, image = 'nginx:latest'): Definition {
  return { id, image: { name: image, internalPorts: [8080] } }
}

export async function openReplica(
  nodeId: string,
  init: Partial<ReplicaInit> & { store?: ReplicaStore; now?: () => number } = {},
): Promise<Replica> {
  const now = init.now ?? (() => NOW)
  return Replica.open({
    store: init.store ?? new MemoryStore(),
    clock: init.clock ?? new HybridClock({ nodeId, now }),
    now,
    log: init.log ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    ...(init.tombstoneGraceMs === undefined ? {} : { tombstoneGraceMs: init.tombstoneGraceMs }),
    ...(init.maxEntities === undefined ? {} : { maxEntities: init.maxEntities }),
    ...(init.signer === undefined ? {} : { signer: init.signer }),
  })
}

export async function withTempDir<T>(run: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'p2p-registry-test-'))
  try {
    return await run(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Stored bytes of a replica's store, for byte-identity checks. */
export async function storedEntries(store: ReplicaStore): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = []
  for await (const entry of store.entries()) out.push(entry)
  return out
}

const NODE_IDS = ['node-a', 'node-b', 'node-c'] as const

/**
 * Random changes over a small key space, so that puts and deletes of the same entity collide often.
 * Versions sit within a few ms of NOW and repeat across nodes, so ties on ts and c are common.
 */
export const changeArb: fc.Arbitrary<Change> = fc
  .record({
    kind: fc.constantFrom('instance' as const, 'definition' as const),
    n: fc.integer({ min: 0, max: 7 }),
    ts: fc.integer({ min: NOW - 3, max: NOW + 3 }),
    c: fc.integer({ min: 0, max: 2 }),
    node: fc.constantFrom(...NODE_IDS),
    deleted: fc.boolean(),
    slug: fc.constantFrom('user-svc', 'billing-svc', 'mail-svc'),
    tag: fc.option(fc.constantFrom('blue', 'green'), { nil: undefined }),
    // Some instance puts are status writes based on an earlier registration version (often shared).
    statusOf: fc.option(
      fc.record({
        back: fc.integer({ min: 1, max: 3 }),
        c: fc.integer({ min: 0, max: 2 }),
        node: fc.constantFrom(...NODE_IDS),
      }),
      {
        nil: undefined,
      },
    ),
  })
  .map(({ kind, n, ts, c, node, deleted, slug, tag, statusOf }): Change => {
    const id = `${kind === 'instance' ? 'inst' : 'def'}-${n}`
    const version = { ts, c, node }
    if (deleted) return { kind, id, version, value: null }
    const value =
      kind === 'instance'
        ? instance(
            id,
            slug,
            tag ? { tags: [tag], details: `written by ${node}` } : { details: `written by ${node}` },
          )
        : definition(id, `img-${node}-${ts - NOW}`)
    if (kind === 'instance' && statusOf) {
      return {
        kind,
        id,
        version,
        value,
        basedOn: { ts: ts - statusOf.back, c: statusOf.c, node: statusOf.node },
      }
    }
    return { kind, id, version, value }
  })

/**
 * The oracle: per key, the change with the greatest sort key (primary version, rank, own version,
 * encoded bytes). Written as a key, not as a comparison, so that it shares no code with `lww.ts`.
 */
export function lwwOracle(changes: readonly Change[]): Array<[string, string]> {
  const v = (x: { ts: number; c: number; node: string }) => [x.ts, x.c, x.node] as const
  const sortKey = (c: Change) => {
    const primary = v(c.basedOn ?? c.version)
    const own = c.basedOn === undefined ? [0, 0, ''] : v(c.version)
    return [...primary, c.basedOn === undefined ? 0 : 1, ...own, encodeEntry(c)] as const
  }
  const greater = (a: readonly (number | string)[], b: readonly (number | string)[]) => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! > b[i]!
    return false
  }
  const best = new Map<string, Change>()
  for (const change of changes) {
    const key = entityKey(change.kind, change.id)
    const held = best.get(key)
    if (!held || greater(sortKey(change), sortKey(held))) best.set(key, change)
  }
  return [...best]
    .map(([key, c]) => [key, encodeEntry(c)] as [string, string])
    .sort(([a], [b]) => (a < b ? -1 : 1))
}
