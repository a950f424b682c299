/**
 * Replica micro-benchmark: 100,000 instances across 1,000 slugs (100 per slug).
 *
 *   npm run bench:replica            (node --expose-gc scripts/bench-replica.ts [rounds])
 *
 * Prints, as medians over rounds:
 *  - changes merged per second into LevelDB in batches of 1,000, and the same bytes written by a bare
 *    LevelDB batch (the baseline: what merging, indexing and digesting cost on top of the disk);
 *  - lookups by slug per second (a 100-instance slug) from the in-memory index, and µs per lookup;
 *  - heap and RSS of the replica after loading the 100,000 instances from LevelDB, per instance,
 *    next to the average JSON size of an instance.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import type { Instance } from '../src/model/index.ts'
import { type Change, encodeEntry, entityKey } from '../src/replica/change.ts'
import { HybridClock } from '../src/replica/hlc.ts'
import { LevelStore } from '../src/replica/level-store.ts'
import { Replica } from '../src/replica/replica.ts'
import { createLogger } from '../src/support/logger.ts'

const log = await createLogger('warn', false)

const INSTANCES = 100_000
const SLUGS = 1_000
const BATCH = 1_000
const ROUNDS = Number(process.argv[2] ?? 3)
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with node --expose-gc (npm run bench:replica does)')

function makeChanges(): Change[] {
  const ts = Date.now() - 60_000
  const changes: Change[] = []
  for (let i = 0; i < INSTANCES; i++) {
    const slug = `svc-${i % SLUGS}`
    const ip = `127.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
    const value: Instance = {
      id: `inst_${i.toString(16).padStart(16, '0')}`,
      url: `http://${ip}:8080`,
      scheme: 'http',
      ip,
      port: 8080,
      slug,
      deploymentId: `depl_${i % 5000}`,
      nodeUrl: `http://node-${i % 10}:11337`,
      tags: ['prod', `zone-${i % 3}`],
      status: 'Healthy',
      lastHeartbeat: new Date(ts).toISOString(),
    }
    changes.push({ kind: 'instance', id: value.id, version: { ts, c: i, node: `node-${i % 10}` }, value })
  }
  return changes
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

async function withDir<T>(run: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-replica-'))
  try {
    return await run(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function mergeRate(changes: Change[]): Promise<number> {
  return withDir(async (dir) => {
    const replica = await Replica.open({
      store: new LevelStore({ path: join(dir, 'db') }),
      clock: new HybridClock({ nodeId: 'bench' }),
      log,
    })
    const start = performance.now()
    for (let at = 0; at < changes.length; at += BATCH) await replica.apply(changes.slice(at, at + BATCH))
    const seconds = (performance.now() - start) / 1000
    await replica.close()
    return changes.length / seconds
  })
}

async function bareLevelRate(changes: Change[]): Promise<number> {
  return withDir(async (dir) => {
    const db = new Level<string, string>(join(dir, 'db'))
    await db.open()
    const start = performance.now()
    for (let at = 0; at < changes.length; at += BATCH) {
      const batch = db.batch()
      for (const change of changes.slice(at, at + BATCH))
        batch.put(entityKey(change.kind, change.id), encodeEntry(change))
      await batch.write()
    }
    const seconds = (performance.now() - start) / 1000
    await db.close()
    return changes.length / seconds
  })
}

function lookupRate(replica: Replica): { perSecond: number; micros: number } {
  const LOOKUPS = 200_000
  let found = 0
  const start = performance.now()
  for (let i = 0; i < LOOKUPS; i++) found += replica.instances({ slug: `svc-${(i * 7919) % SLUGS}` }).length
  const seconds = (performance.now() - start) / 1000
  if (found !== LOOKUPS * (INSTANCES / SLUGS)) throw new Error(`lookup found ${found} instances`)
  return { perSecond: LOOKUPS / seconds, micros: (seconds * 1e6) / LOOKUPS }
}

const changes = makeChanges()
const jsonBytes = changes.reduce((sum, c) => sum + Buffer.byteLength(JSON.stringify(c.value)), 0) / INSTANCES
const merged: number[] = []
const bare: number[] = []
for (let round = 0; round < ROUNDS; round++) {
  bare.push(await bareLevelRate(changes))
  merged.push(await mergeRate(changes))
}

// Memory and lookups: load the replica from LevelDB with nothing else alive, as an agent starts.
const memory = await withDir(async (dir) => {
  const path = join(dir, 'db')
  const writer = await Replica.open({
    store: new LevelStore({ path }),
    clock: new HybridClock({ nodeId: 'bench' }),
    log,
  })
  for (let at = 0; at < changes.length; at += BATCH) await writer.apply(changes.slice(at, at + BATCH))
  await writer.close()
  changes.length = 0
  gc()
  const heapBefore = process.memoryUsage().heapUsed
  const rssBefore = process.memoryUsage().rss
  const started = performance.now()
  const replica = await Replica.open({
    store: new LevelStore({ path }),
    clock: new HybridClock({ nodeId: 'bench' }),
    log,
  })
  const openMs = performance.now() - started
  gc()
  const heap = process.memoryUsage().heapUsed - heapBefore
  const rss = process.memoryUsage().rss - rssBefore
  // First lookup of each slug: builds that slug's cached answer (what a lookup costs after a change).
  const coldStart = performance.now()
  for (let i = 0; i < SLUGS; i++) replica.instances({ slug: `svc-${i}` })
  const coldMicros = ((performance.now() - coldStart) * 1000) / SLUGS
  const lookups = [0, 1, 2, 3, 4].map(() => lookupRate(replica))
  await replica.close()
  return { heap, rss, openMs, lookups, coldMicros }
})

const lookup = {
  perSecond: median(memory.lookups.map((l) => l.perSecond)),
  micros: median(memory.lookups.map((l) => l.micros)),
}
console.log(
  `replica benchmark: ${fmt(INSTANCES)} instances, ${fmt(SLUGS)} slugs, batches of ${fmt(BATCH)}, ${ROUNDS} rounds (medians)`,
)
console.log(`merge into LevelDB:     ${fmt(median(merged))} changes/s`)
console.log(
  `bare LevelDB batches:   ${fmt(median(bare))} puts/s   (merge = ${(median(merged) / median(bare)).toFixed(2)}x bare)`,
)
console.log(`lookup by slug (100):   ${fmt(lookup.perSecond)} lookups/s, ${lookup.micros.toFixed(2)} µs each`)
console.log(`  first lookup / after a change to the slug: ${memory.coldMicros.toFixed(2)} µs`)
console.log(`open from LevelDB:      ${fmt(memory.openMs)} ms for ${fmt(INSTANCES)} entries`)
console.log(
  `memory after load:      heap +${fmt(memory.heap / 2 ** 20)} MiB, RSS +${fmt(memory.rss / 2 ** 20)} MiB; ` +
    `${fmt(memory.heap / INSTANCES)} B heap per instance, JSON ${fmt(jsonBytes)} B, ` +
    `beyond JSON ${fmt(memory.heap / INSTANCES - jsonBytes)} B`,
)
