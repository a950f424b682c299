import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LevelStore } from '../../src/replica/level-store.ts'
import { MemoryStore } from '../../src/replica/memory-store.ts'
import type { ReplicaStore } from '../../src/replica/store.ts'
import { storedEntries, withTempDir } from './fixtures.ts'

/** One contract, two implementations. */
const implementations: Array<[string, (dir: string) => ReplicaStore]> = [
  ['MemoryStore', () => new MemoryStore()],
  ['LevelStore', (dir) => new LevelStore({ path: join(dir, 'db') })],
]

describe.each(implementations)('%s', (_name, make) => {
  let store: ReplicaStore
  let release: () => void
  let done: Promise<void>

  beforeEach(async () => {
    const ready = Promise.withResolvers<void>()
    const finished = Promise.withResolvers<void>()
    release = finished.resolve
    done = withTempDir(async (dir) => {
      store = make(dir)
      await store.open()
      ready.resolve()
      await finished.promise
      await store.close()
    })
    await ready.promise
  })

  afterEach(async () => {
    release()
    await done
  })

  it('writes puts and deletes in one batch and lists entries in key order', async () => {
    await store.write(
      [
        ['instance/b', 'B'],
        ['instance/a', 'A'],
        ['definition/x', 'X'],
      ],
      [],
    )
    await store.write([['instance/c', 'C']], ['instance/a', 'instance/missing'])
    expect(await storedEntries(store)).toEqual([
      ['definition/x', 'X'],
      ['instance/b', 'B'],
      ['instance/c', 'C'],
    ])
  })

  it('keeps metadata apart from entries and clears entries only', async () => {
    await store.write([['node/n1', 'N']], [])
    await store.putMeta('nodeId', 'n1')
    expect(await store.getMeta('nodeId')).toBe('n1')
    expect(await store.getMeta('missing')).toBeUndefined()
    await store.clearEntries()
    expect(await storedEntries(store)).toEqual([])
    expect(await store.getMeta('nodeId')).toBe('n1')
  })
})

it('LevelStore keeps entries and metadata across close and reopen', async () => {
  await withTempDir(async (dir) => {
    const first = new LevelStore({ path: join(dir, 'db') })
    await first.open()
    await first.write([['instance/a', '{"x":1}']], [])
    await first.putMeta('lastContact', '42')
    await first.close()
    const second = new LevelStore({ path: join(dir, 'db') })
    await second.open()
    expect(await storedEntries(second)).toEqual([['instance/a', '{"x":1}']])
    expect(await second.getMeta('lastContact')).toBe('42')
    await second.close()
  })
})
