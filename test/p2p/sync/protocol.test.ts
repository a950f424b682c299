import { describe, expect, it } from 'vitest'
import { newerThanReceived } from '../../../src/p2p/sync/entries.ts'
import { SyncSessionError } from '../../../src/p2p/sync/errors.ts'
import { decodeFrame, encodeFrame, type Frame } from '../../../src/p2p/sync/messages.ts'
import {
  ALL_LEAVES,
  childDigests,
  differingChildren,
  leavesToRanges,
  shouldExchangeAll,
  walkLevels,
} from '../../../src/p2p/sync/tree.ts'
import { type Change, entityKey } from '../../../src/replica/change.ts'
import { DigestTree, LEAF_COUNT, leafOf } from '../../../src/replica/digest.ts'
import { NOW } from '../../replica/fixtures.ts'
import { definitionPut, tombstone } from './fixtures.ts'

const DIGEST = `${'Q'.repeat(43)}=`
const bytes = (x: unknown) => Buffer.from(JSON.stringify(x))

function reason(run: () => unknown): string | undefined {
  try {
    run()
  } catch (err) {
    return err instanceof SyncSessionError ? err.reason : `not a SyncSessionError: ${err}`
  }
  return undefined
}

describe('frames', () => {
  it('round-trips every frame type', () => {
    const frames: Frame[] = [
      { type: 'hello', digest: DIGEST, entries: 3 },
      { type: 'get-digests', parentLevel: 4, parents: [0, 7, 15], level: 8 },
      { type: 'digests', level: 4, digests: [DIGEST, DIGEST] },
      {
        type: 'get-entries',
        ranges: [
          [0, 2],
          [5, 4096],
        ],
      },
      { type: 'entries', entries: [{ any: 'thing' }], last: true },
      { type: 'done', digest: DIGEST },
      { type: 'error', reason: 'busy' },
    ]
    for (const frame of frames) expect(decodeFrame(encodeFrame(frame))).toEqual(frame)
  })

  it('ignores unknown fields, for later versions', () => {
    expect(decodeFrame(bytes({ type: 'hello', digest: DIGEST, entries: 0, since: 5 }))).toEqual({
      type: 'hello',
      digest: DIGEST,
      entries: 0,
    })
  })

  it.each([
    ['empty frame', Buffer.alloc(0)],
    ['not JSON', Buffer.from('{type: hello}')],
    ['bad UTF-8', Buffer.from([0xc3, 0x28])],
    ['null', bytes(null)],
    ['array', bytes([])],
    ['no type', bytes({ digest: DIGEST })],
    ['unknown type', bytes({ type: 'push-everything' })],
    ['hello without digest', bytes({ type: 'hello', entries: 1 })],
    ['hello with hex digest', bytes({ type: 'hello', digest: 'ab'.repeat(32), entries: 1 })],
    ['hello with fractional count', bytes({ type: 'hello', digest: DIGEST, entries: 1.5 })],
    ['get-digests going up', bytes({ type: 'get-digests', parentLevel: 8, parents: [0], level: 4 })],
    [
      'get-digests below the leaves',
      bytes({ type: 'get-digests', parentLevel: 12, parents: [0], level: 13 }),
    ],
    ['get-digests with no parents', bytes({ type: 'get-digests', parentLevel: 0, parents: [], level: 4 })],
    [
      'get-digests with repeated parents',
      bytes({ type: 'get-digests', parentLevel: 4, parents: [3, 3], level: 8 }),
    ],
    [
      'get-digests with unsorted parents',
      bytes({ type: 'get-digests', parentLevel: 4, parents: [3, 1], level: 8 }),
    ],
    ['digests with a short digest', bytes({ type: 'digests', level: 4, digests: ['AAAA'] })],
    ['digests too many', bytes({ type: 'digests', level: 12, digests: Array(4097).fill(DIGEST) })],
    ['get-entries with no ranges', bytes({ type: 'get-entries', ranges: [] })],
    ['get-entries past the last leaf', bytes({ type: 'get-entries', ranges: [[0, 4097]] })],
    ['get-entries with an empty range', bytes({ type: 'get-entries', ranges: [[3, 3]] })],
    [
      'get-entries with touching ranges',
      bytes({
        type: 'get-entries',
        ranges: [
          [0, 3],
          [3, 5],
        ],
      }),
    ],
    ['entries not an array', bytes({ type: 'entries', entries: {}, last: true })],
    ['entries without last', bytes({ type: 'entries', entries: [] })],
    ['error without reason', bytes({ type: 'error' })],
  ])('rejects %s as malformed', (_name, frame) => {
    expect(reason(() => decodeFrame(frame))).toBe('malformed-frame')
  })
})

describe('digest tree walk', () => {
  function tree(keys: string[]): DigestTree {
    const t = new DigestTree()
    for (const key of keys) t.toggle(key, `value of ${key}`)
    return t
  }

  it('finds exactly the differing leaves in three rounds', () => {
    const keys = Array.from({ length: 5_000 }, (_, i) => `instance/inst-${i}`)
    const ours = tree(keys)
    const theirs = tree(keys)
    const changed = ['instance/inst-17', 'instance/inst-4000', 'definition/new-one']
    theirs.toggle(changed[0]!, 'value of instance/inst-17')
    theirs.toggle(changed[0]!, 'another value')
    theirs.toggle(changed[1]!, 'value of instance/inst-4000')
    theirs.toggle(changed[2]!, 'a new entry')

    let parentLevel = 0
    let parents = [0]
    for (const level of walkLevels(4)) {
      parents = differingChildren(
        ours,
        parentLevel,
        parents,
        level,
        childDigests(theirs, parentLevel, parents, level),
      )
      parentLevel = level
    }
    expect(parents).toEqual([...new Set(changed.map(leafOf))].sort((a, b) => a - b))
  })

  it('walks 4, 8 and 12 levels', () => {
    expect(walkLevels(4)).toEqual([4, 8, 12])
    expect(walkLevels(5)).toEqual([5, 10, 12])
  })

  it('turns leaves into sorted, merged ranges', () => {
    expect(leavesToRanges([])).toEqual([])
    expect(leavesToRanges([0, 1, 2, 5, 7, 8, 4095])).toEqual([
      [0, 3],
      [5, 6],
      [7, 9],
      [4095, 4096],
    ])
    expect(leavesToRanges(Array.from({ length: LEAF_COUNT }, (_, i) => i))).toEqual(ALL_LEAVES)
  })

  it('skips the walk only when one side is (nearly) empty', () => {
    expect(shouldExchangeAll(0, 100_000)).toBe(true)
    expect(shouldExchangeAll(100_000, 0)).toBe(true)
    expect(shouldExchangeAll(1, 100_000)).toBe(true)
    expect(shouldExchangeAll(20_000, 20_010)).toBe(false)
    expect(shouldExchangeAll(2_000, 100_000)).toBe(false)
  })
})

describe('what the client pushes back', () => {
  const received = (changes: Change[]) => new Map(changes.map((c) => [entityKey(c.kind, c.id), c]))

  it('sends entries the peer lacks or holds older, tombstones included', () => {
    const same = definitionPut('def-same', NOW, 'node-a')
    const missing = definitionPut('def-missing', NOW, 'node-a')
    const newer = tombstone('definition', 'def-newer', NOW + 1, 'node-a')
    const older = definitionPut('def-older', NOW - 1, 'node-a')
    const theirs = [
      same,
      definitionPut('def-newer', NOW, 'node-b'),
      definitionPut('def-older', NOW, 'node-b'),
      definitionPut('def-only-theirs', NOW, 'node-b'),
    ]
    expect(newerThanReceived([same, missing, newer, older], received(theirs))).toEqual([missing, newer])
  })

  it('breaks version ties on the encoded bytes, as the merge does', () => {
    const small = definitionPut('def-tie', NOW, 'node-a', 'aaa')
    const large = definitionPut('def-tie', NOW, 'node-a', 'zzz')
    expect(newerThanReceived([large], received([small]))).toEqual([large])
    expect(newerThanReceived([small], received([large]))).toEqual([])
  })
})

describe('entry frames', () => {
  it('rejects a frame of more than MAX_ENTRIES_PER_FRAME items', () => {
    expect(
      reason(() => decodeFrame(bytes({ type: 'entries', entries: Array(10_001).fill(0), last: true }))),
    ).toBe('malformed-frame')
  })
})
