import type { IncomingStreamData } from '@libp2p/interface'
import * as lp from 'it-length-prefixed'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SYNC_PROTOCOL } from '../../../src/model/wire.ts'
import type { RegistryLibp2p } from '../../../src/p2p/libp2p-node.ts'
import type { SyncFailure, SyncReport } from '../../../src/p2p/sync/index.ts'
import type { Change } from '../../../src/replica/change.ts'
import { NOW, openReplica } from '../../replica/fixtures.ts'
import {
  connect,
  instancePuts,
  RawPeer,
  reportOf,
  seed,
  seeded,
  startNode,
  startPeer,
  stopPeers,
  type TestPeer,
  waitFor,
} from './fixtures.ts'

const OTHER_DIGEST = `${'A'.repeat(43)}=`
const hello = { type: 'hello', digest: OTHER_DIGEST, entries: 1_000 }

function sendAll(peer: RawPeer, ...frames: unknown[]): void {
  for (const frame of frames) peer.send(frame)
}

/** An unsigned LEB128 varint: the length prefix of a frame. */
function varint(n: number): Uint8Array {
  const out: number[] = []
  for (; n >= 0x80; n = Math.floor(n / 128)) out.push((n % 128) | 0x80)
  out.push(n)
  return Uint8Array.from(out)
}

/** Entries a hostile or buggy peer might send, each of which `decodeChange` must refuse. */
function invalidEntries(): unknown[] {
  const [good] = instancePuts(1, { from: 424_242 }) as [Change]
  return [
    'not an object',
    null,
    { ...good, kind: 'gizmo' },
    { ...good, id: 'bad id with spaces' },
    { ...good, extra: true, value: { ...good.value, port: 0 } },
    { ...good, version: { ts: -1, c: 0, node: 'node-x' } },
    { ...good, version: { ts: NOW, c: 0, node: 'node x', more: 1 } },
    { ...good, value: { ...good.value, id: 'someone-else' } },
    { ...good, value: { id: good.id, slug: 'x' } },
    { kind: 'instance', id: good.id, version: good.version },
  ]
}

describe('anti-entropy server facing a misbehaving client', () => {
  let server: TestPeer
  let attacker: RegistryLibp2p
  let digestBefore: string

  beforeAll(async () => {
    server = await startPeer('node-s', { init: { timeoutMs: 1_000 } })
    await seed(server.replica, instancePuts(2_000))
    attacker = await startNode()
    await connect(attacker, server.node)
    digestBefore = server.replica.digest()
  })

  afterAll(async () => {
    await stopPeers(server)
    await attacker.stop()
  })

  /** Plays `script` against the server and returns the server's report of that session. */
  async function served(script: (peer: RawPeer) => Promise<void> | void): Promise<SyncReport> {
    const seen = server.reports.length
    const peer = await RawPeer.dial(attacker, server.node)
    await script(peer)
    const report = await reportOf(server, (r) => server.reports.indexOf(r) >= seen, 'the server report')
    peer.abort()
    return report
  }

  const random = seeded(99)
  const randomBytes = Uint8Array.from({ length: 4096 }, () => Math.floor(random() * 256))
  const cases: Array<[string, (peer: RawPeer) => void, SyncFailure[]]> = [
    ['random bytes', (p) => p.write(randomBytes), ['oversized-frame', 'malformed-frame', 'closed']],
    ['a frame that is not JSON', (p) => p.send('hello, server'), ['malformed-frame']],
    [
      'a frame that is not UTF-8',
      (p) => p.write(lp.encode.single(Uint8Array.from([0xff, 0xfe, 0x7b]))),
      ['malformed-frame'],
    ],
    ['JSON that is not an object', (p) => p.send([1, 2, 3]), ['malformed-frame']],
    ['an unknown frame type', (p) => p.send({ type: 'gimme-everything' }), ['malformed-frame']],
    ['hello with a bad digest', (p) => p.send({ ...hello, digest: 'abc' }), ['malformed-frame']],
    ['hello with a negative count', (p) => p.send({ ...hello, entries: -1 }), ['malformed-frame']],
    [
      'a request before hello',
      (p) => p.send({ type: 'get-entries', ranges: [[0, 1]] }),
      ['unexpected-frame'],
    ],
    [
      'get-digests more than 4 levels down',
      (p) => sendAll(p, hello, { type: 'get-digests', parentLevel: 0, parents: [0], level: 9 }),
      ['malformed-frame'],
    ],
    [
      'get-digests with a parent out of range',
      (p) => sendAll(p, hello, { type: 'get-digests', parentLevel: 4, parents: [16], level: 8 }),
      ['malformed-frame'],
    ],
    [
      'get-entries with overlapping ranges',
      (p) =>
        sendAll(p, hello, {
          type: 'get-entries',
          ranges: [
            [0, 10],
            [5, 20],
          ],
        }),
      ['malformed-frame'],
    ],
    [
      'entries nobody asked for',
      (p) => sendAll(p, hello, { type: 'entries', entries: [], last: true }),
      ['unexpected-frame'],
    ],
    [
      'endless digest requests',
      (p) => {
        p.send(hello)
        for (let i = 0; i < 10; i++) p.send({ type: 'get-digests', parentLevel: 0, parents: [0], level: 4 })
      },
      ['unexpected-frame'],
    ],
    [
      'a frame announcing 8 MiB',
      (p) => {
        p.write(varint(8 * 1024 * 1024))
        p.write(new Uint8Array(1000))
      },
      ['oversized-frame'],
    ],
    [
      'a frame cut short',
      (p) => {
        p.write(varint(500))
        p.write(new Uint8Array(10))
        p.end()
      },
      ['closed'],
    ],
    ['a stream that never says anything', () => undefined, ['timeout']],
    ['hello, then silence', (p) => p.send({ ...hello, entries: 1 }), ['timeout']],
  ]

  for (const [name, script, reasons] of cases) {
    it(`ends the session on ${name}, counts it and keeps its state`, async () => {
      const rejectedBefore = server.sync.stats.rejectedFrames
      const report = await served(script)
      expect(report.outcome).toBe('failed')
      expect(reasons).toContain(report.reason)
      if (report.reason !== 'closed' && report.reason !== 'timeout') {
        expect(server.sync.stats.rejectedFrames).toBe(rejectedBefore + 1)
      }
      expect(server.lines.some((l) => l.reason === report.reason && l.level >= 40)).toBe(true)
      expect(server.replica.digest()).toBe(digestBefore)
    })
  }

  it('merges only the valid entries a client pushes', async () => {
    const [valid] = instancePuts(1, { from: 900_000, node: 'node-x' }) as [Change]
    const [future] = instancePuts(1, { from: 900_001, node: 'node-x' }) as [Change]
    const farFuture = { ...future, version: { ...future.version, ts: NOW + 60 * 60 * 1000 } }
    const rejectedBefore = server.sync.stats.rejectedEntries
    const driftBefore = server.sync.stats.applied['rejected-drift']

    let done: Record<string, unknown> | undefined
    const report = await served(async (p) => {
      p.send(hello)
      expect((await p.next())?.type).toBe('hello')
      p.send({ type: 'get-entries', ranges: [[0, 16]] })
      await p.entries()
      p.send({ type: 'entries', entries: invalidEntries(), last: false })
      p.send({ type: 'entries', entries: [farFuture, valid], last: true })
      done = await p.next()
    })

    expect(done?.type).toBe('done')
    expect(report).toMatchObject({ outcome: 'repaired', entriesReceived: 2 })
    expect(server.sync.stats.rejectedEntries).toBe(rejectedBefore + invalidEntries().length)
    expect(server.sync.stats.applied['rejected-drift']).toBe(driftBefore + 1)
    expect(server.lines.some((l) => l.drifted === 1 && l.peer === attacker.peerId.toString())).toBe(true)
    const expected = await openReplica('reference')
    await seed(expected, [...instancePuts(2_000), valid])
    expect(server.replica.digest()).toBe(expected.digest())
    digestBefore = server.replica.digest()
  })

  it('still serves well-behaved peers afterwards', async () => {
    const good = await startPeer('node-g')
    try {
      await connect(good.node, server.node)
      const report = await good.sync.syncWith(server.node.peerId)
      expect(report.outcome).toBe('repaired')
      expect(good.replica.digest()).toBe(server.replica.digest())
    } finally {
      await stopPeers(good)
    }
  })
})

describe('anti-entropy client facing a misbehaving server', () => {
  let client: TestPeer
  let rogue: RegistryLibp2p

  beforeAll(async () => {
    client = await startPeer('node-c', { init: { timeoutMs: 1_000 } })
    await seed(client.replica, instancePuts(2_000))
    rogue = await startNode()
    await connect(client.node, rogue)
  })

  afterAll(async () => {
    await stopPeers(client)
    await rogue.stop()
  })

  /** Makes the rogue node answer sync streams with `script`. */
  async function rogueServes(script: (peer: RawPeer) => Promise<void>): Promise<void> {
    await rogue.handle(
      SYNC_PROTOCOL,
      ({ stream }: IncomingStreamData) => {
        const peer = new RawPeer(stream)
        script(peer).catch(() => peer.abort())
      },
      { force: true },
    )
  }

  it('times out on a server that never answers', async () => {
    await rogueServes(async () => undefined)
    const report = await client.sync.syncWith(rogue.peerId)
    expect(report).toMatchObject({ outcome: 'failed', reason: 'timeout' })
  })

  it('rejects a digest answer of the wrong shape', async () => {
    await rogueServes(async (p) => {
      await p.next()
      p.send({ type: 'hello', digest: OTHER_DIGEST, entries: 2_000 })
      await p.next()
      p.send({ type: 'digests', level: 4, digests: [OTHER_DIGEST] })
    })
    const report = await client.sync.syncWith(rogue.peerId)
    expect(report).toMatchObject({ outcome: 'failed', reason: 'malformed-frame' })
  })

  it('rejects an oversized frame', async () => {
    await rogueServes(async (p) => {
      await p.next()
      p.write(varint(64 * 1024 * 1024))
      p.write(new Uint8Array(100))
    })
    const report = await client.sync.syncWith(rogue.peerId)
    expect(report).toMatchObject({ outcome: 'failed', reason: 'oversized-frame' })
  })

  it('drops invalid and far-future entries and merges the rest', async () => {
    const before = client.replica.digest()
    const [valid] = instancePuts(1, { from: 800_000, node: 'node-r' }) as [Change]
    const [future] = instancePuts(1, { from: 800_001, node: 'node-r' }) as [Change]
    const farFuture = { ...future, version: { ...future.version, ts: NOW + 60 * 60 * 1000 } }
    let pushed: unknown[] = []
    await rogueServes(async (p) => {
      await p.next()
      // Claiming to be empty makes the client skip the walk and exchange everything.
      p.send({ type: 'hello', digest: OTHER_DIGEST, entries: 0 })
      await p.next()
      p.send({ type: 'entries', entries: [...invalidEntries(), farFuture, valid], last: true })
      pushed = await p.entries()
      p.send({ type: 'done', digest: OTHER_DIGEST })
    })

    const report = await client.sync.syncWith(rogue.peerId)

    expect(report).toMatchObject({ outcome: 'repaired', entriesReceived: 2, entriesSent: 2_000 })
    expect(pushed).toHaveLength(2_000)
    expect(client.sync.stats.rejectedEntries).toBe(invalidEntries().length)
    expect(client.sync.stats.applied['rejected-drift']).toBe(1)
    expect(client.replica.digest()).not.toBe(before)
    const expected = await openReplica('reference')
    await seed(expected, [...instancePuts(2_000), valid])
    expect(client.replica.digest()).toBe(expected.digest())
  })

  it('fails cleanly when the peer does not speak the protocol', async () => {
    await rogue.unhandle(SYNC_PROTOCOL)
    const report = await client.sync.syncWith(rogue.peerId)
    expect(report).toMatchObject({ outcome: 'failed', reason: 'dial-failed' })
    await waitFor(() => client.sync.stats.failures['dial-failed'] === 1, 'the failure count')
  })
})
