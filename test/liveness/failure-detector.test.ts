import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  type Beat,
  classify,
  digestPrefix,
  encodeBeat,
  FailureDetector,
  type FailureDetectorInit,
  InitError,
  type LivenessChange,
  resolveThresholds,
} from '../../src/liveness/index.ts'
import { MAX_BEAT_BYTES } from '../../src/model/wire.ts'
import type { Replica } from '../../src/replica/replica.ts'
import {
  FakeBeatSource,
  memoryReplica,
  nodeIdentity,
  nodeRecord,
  randomPeerId,
  receiveRecord,
  testLogger,
} from './fixtures.ts'

const NOW = Date.UTC(2026, 10, 27, 12, 0, 0)
const HB = 1000 // thresholds: suspect 3000, unreachable 6000, sweep every 500 ± 10%

interface Setup {
  beats: FakeBeatSource
  replica: Replica
  fd: FailureDetector
  events: Array<{ event: string; at: number } & LivenessChange>
}

async function setup(
  init: FailureDetectorInit = {},
  before?: (replica: Replica) => Promise<void>,
): Promise<Setup> {
  const beats = new FakeBeatSource()
  const replica = await memoryReplica('node-a')
  await before?.(replica)
  const fd = new FailureDetector(
    { heartbeatIntervalMs: HB, ...init },
    { beats, replica, log: testLogger(), nodeId: 'node-a' },
  )
  const events: Setup['events'] = []
  for (const event of ['node:alive', 'node:suspect', 'node:unreachable'] as const) {
    fd.on(event, (change) => events.push({ event, at: Date.now() - NOW, ...change }))
  }
  fd.start()
  return { beats, replica, fd, events }
}

function beat(n: string, s: number, d = '0'.repeat(16), t = Date.now()): Uint8Array {
  return encodeBeat({ n, t, s, d } satisfies Beat)
}

describe('classify and thresholds', () => {
  const th = resolveThresholds({ heartbeatIntervalMs: 2000 })

  it('defaults to 3 and 6 heartbeats and a sweep every half heartbeat', () => {
    expect(th).toEqual({
      heartbeatIntervalMs: 2000,
      suspectAfterMs: 6000,
      unreachableAfterMs: 12000,
      checkIntervalMs: 1000,
    })
  })

  it('maps silence to a status, and waits for suspectAfterMs of listening before unreachable', () => {
    expect(classify(5999, 1e9, th)).toBe('alive')
    expect(classify(6000, 1e9, th)).toBe('suspect')
    expect(classify(12000, 1e9, th)).toBe('unreachable')
    expect(classify(1e9, 0, th)).toBe('suspect')
    expect(classify(1e9, 6000, th)).toBe('unreachable')
  })

  it('rejects thresholds that make no sense, naming the option', () => {
    expect(() => resolveThresholds({ suspectAfterMs: 5000, unreachableAfterMs: 5000 })).toThrow(
      expect.objectContaining({ name: 'InitError', option: 'unreachableAfterMs' }),
    )
    expect(() => resolveThresholds({ heartbeatIntervalMs: 0 })).toThrow(InitError)
    expect(() => resolveThresholds({ checkIntervalMs: Number.NaN })).toThrow(/checkIntervalMs/)
  })
})

describe('FailureDetector', () => {
  let s: Setup
  beforeEach(() => {
    vi.useFakeTimers({ now: NOW })
  })
  afterEach(() => {
    s?.fd.stop()
    vi.useRealTimers()
  })

  it('keeps a beating node alive, then flags it suspect and unreachable on time, and alive again', async () => {
    const peerB = await randomPeerId()
    s = await setup({}, (replica) =>
      receiveRecord(replica, nodeRecord('node-b', NOW, { peerId: peerB.toString() })),
    )
    expect(s.fd.status('node-b')).toBe('alive')
    expect(s.beats.listenerCount('frame')).toBe(1)

    // Ten beats, one per interval: alive throughout, and no event beyond the first classification.
    let seq = 0
    for (let i = 0; i < 10; i++) {
      await vi.advanceTimersByTimeAsync(HB)
      expect(s.fd.receive(peerB.toString(), beat('node-b', seq++))).toBe('accepted')
    }
    expect(s.events.map((e) => e.event)).toEqual(['node:alive'])
    const lastBeat = Date.now()
    expect(s.fd.lastSeen('node-b')).toBe(lastBeat)

    // Silence: suspect after 3 s (+ at most one sweep), unreachable after 6 s (+ one sweep).
    await vi.advanceTimersByTimeAsync(7000)
    const [, suspect, unreachable] = s.events
    expect(suspect).toMatchObject({
      event: 'node:suspect',
      nodeId: 'node-b',
      lastSeenMs: lastBeat,
      previous: 'alive',
    })
    expect(suspect!.at - (lastBeat - NOW)).toBeGreaterThanOrEqual(3000)
    expect(suspect!.at - (lastBeat - NOW)).toBeLessThanOrEqual(3000 + 550)
    expect(unreachable).toMatchObject({ event: 'node:unreachable', previous: 'suspect' })
    expect(unreachable!.at - (lastBeat - NOW)).toBeGreaterThanOrEqual(6000)
    expect(unreachable!.at - (lastBeat - NOW)).toBeLessThanOrEqual(6000 + 550)
    expect(s.fd.status('node-b')).toBe('unreachable')
    expect(s.fd.statusCounts()).toEqual({ alive: 1, suspect: 0, unreachable: 1 })

    // It comes back: alive at once, not on the next sweep.
    s.fd.receive(peerB.toString(), beat('node-b', seq++))
    expect(s.events.at(-1)).toMatchObject({
      event: 'node:alive',
      previous: 'unreachable',
      at: Date.now() - NOW,
    })
    expect(s.events).toHaveLength(4)
  })

  it('starts a node known only from an old record as suspect, then unreachable, never alive', async () => {
    s = await setup({}, (replica) =>
      receiveRecord(replica, nodeRecord('node-dead', NOW - 60_000), NOW - 60_000),
    )
    expect(s.fd.status('node-dead')).toBe('suspect')
    expect(s.fd.lastSeen('node-dead')).toBe(NOW - 60_000)
    await vi.advanceTimersByTimeAsync(3000 + 550)
    expect(s.fd.status('node-dead')).toBe('unreachable')
    expect(s.events.map((e) => [e.event, e.nodeId])).toEqual([
      ['node:suspect', 'node-dead'],
      ['node:unreachable', 'node-dead'],
    ])
    // A node whose old record arrives later (say by sync) is unreachable at once.
    await receiveRecord(s.replica, nodeRecord('node-old', NOW - 60_000), NOW - 60_000)
    expect(s.fd.status('node-old')).toBe('unreachable')
    // A recent record counts as hearing from the node, capped at our clock.
    await receiveRecord(s.replica, nodeRecord('node-new', Date.now() + 2000))
    expect(s.fd.status('node-new')).toBe('alive')
    expect(s.fd.lastSeen('node-new')).toBe(Date.now())
  })

  it('never flags itself, and ignores beats that claim its node id', async () => {
    s = await setup({}, (replica) =>
      receiveRecord(replica, nodeRecord('node-a', NOW - 3_600_000), NOW - 3_600_000),
    )
    const impostor = await randomPeerId()
    expect(s.fd.receive(impostor.toString(), beat('node-a', 0))).toBe('ignored-self')
    await vi.advanceTimersByTimeAsync(20_000)
    expect(s.fd.status('node-a')).toBe('alive')
    expect(s.fd.lastSeen('node-a')).toBe(Date.now())
    expect(s.events).toEqual([])
    expect(s.fd.snapshot()).toEqual([
      { nodeId: 'node-a', status: 'alive', lastSeenMs: Date.now(), lastBeatMs: undefined, peerId: undefined },
    ])
    expect(s.fd.counts()['ignored-self']).toBe(1)
  })

  it('rejects garbage, and ignores beats from the wrong peer, stale copies and own-id claims', async () => {
    const [peerB, peerC, stranger] = await Promise.all([randomPeerId(), randomPeerId(), randomPeerId()])
    s = await setup({}, (replica) =>
      receiveRecord(replica, nodeRecord('node-b', NOW, { peerId: peerB.toString() })),
    )
    const text = (t: string) => new TextEncoder().encode(t)
    const oversized = JSON.stringify({
      n: 'node-x',
      t: NOW,
      s: 0,
      d: '0'.repeat(16),
      pad: 'x'.repeat(MAX_BEAT_BYTES),
    })
    const malformed: Uint8Array[] = [
      crypto.getRandomValues(new Uint8Array(64)),
      new Uint8Array([0xff, 0xfe, 0x7b]),
      text('not json'),
      text('[1,2,3]'),
      text('null'),
      text('{"n":"node-x","t":1,"s":0}'),
      text('{"n":"bad id!","t":1,"s":0,"d":"0000000000000000"}'),
      text('{"n":"node-x","t":-1,"s":0,"d":"0000000000000000"}'),
      text('{"n":"node-x","t":1,"s":0.5,"d":"0000000000000000"}'),
      text('{"n":"node-x","t":1,"s":0,"d":"ABCDEF0000000000"}'),
      text('{"n":"node-x","t":1,"s":0,"d":"0000000000000000","h":[1]}'),
      text('{"n":"node-x","t":1,"s":0,"d":"0000000000000000","h":{"bad id!":1}}'),
      text('{"n":"node-x","t":1,"s":0,"d":"0000000000000000","h":{"node-y":5}}'), // a time before 0
      text('{"n":"node-x","t":1,"s":0,"d":"0000000000000000","h":{"node-y":"1"}}'),
    ]
    for (const data of malformed) expect(s.fd.receive(stranger.toString(), data)).toBe('rejected-malformed')
    expect(s.fd.receive(stranger.toString(), text(oversized))).toBe('rejected-oversized')
    // node-b's record names peerB: the same beat from another peer is not believed.
    expect(s.fd.receive(peerC.toString(), beat('node-b', 0))).toBe('ignored-peer-mismatch')
    expect(s.fd.receive(peerB.toString(), beat('node-b', 5))).toBe('accepted')
    // An older beat is dropped; a restarted sender (s from 0, later t) is heard.
    expect(s.fd.receive(peerB.toString(), beat('node-b', 4, undefined, NOW - 1))).toBe('ignored-stale')
    await vi.advanceTimersByTimeAsync(10)
    expect(s.fd.receive(peerB.toString(), beat('node-b', 0))).toBe('accepted')
    // Without a record, the first peer to beat for an id keeps it until it goes unreachable.
    expect(s.fd.receive(peerC.toString(), beat('node-c', 0))).toBe('accepted')
    expect(s.fd.receive(stranger.toString(), beat('node-c', 1))).toBe('ignored-peer-mismatch')
    // Unknown fields are allowed (the format is append-only).
    expect(
      s.fd.receive(peerC.toString(), text('{"n":"node-c","t":1,"s":2,"d":"0000000000000000","x":[1]}')),
    ).toBe('accepted')
    // The channel reports frames over the cap without handing them over.
    s.beats.emit('oversized', stranger.toString())
    expect(s.fd.counts()).toEqual({
      accepted: 4,
      'rejected-oversized': 2,
      'rejected-malformed': malformed.length,
      'ignored-self': 0,
      'ignored-peer-mismatch': 2,
      'ignored-stale': 1,
      'ignored-capacity': 0,
    })
    // Garbage changed nothing: only the nodes that beat properly are known.
    expect(s.fd.status('node-x')).toBeUndefined()
    expect(s.fd.status('node-y')).toBeUndefined()
    expect(s.fd.status('node-c')).toBe('alive')
    expect(s.fd.snapshot().map((e) => [e.nodeId, e.status, e.peerId])).toEqual([
      ['node-a', 'alive', undefined],
      ['node-b', 'alive', peerB.toString()],
      ['node-c', 'alive', peerC.toString()],
    ])
  })

  it('counts a relay of a newer beat as hearing from its node, and relays what it believes alive', async () => {
    const [peerB, peerC] = await Promise.all([randomPeerId(), randomPeerId()])
    const peerX = await randomPeerId()
    s = await setup({}, async (replica) => {
      await receiveRecord(replica, nodeRecord('node-d', NOW - 60_000, { peerId: 'somebody' }), NOW - 60_000)
      await receiveRecord(replica, nodeRecord('node-b', NOW, { peerId: peerB.toString() }), NOW)
    })
    expect(s.fd.status('node-d')).toBe('suspect')
    // A peer with no record (anyone with the cluster key) is heard, but its relays are not believed.
    const fromNobody = encodeBeat({
      n: 'node-y',
      t: Date.now(),
      s: 0,
      d: '0'.repeat(16),
      h: { 'node-d': 400 },
    })
    expect(s.fd.receive(peerX.toString(), fromNobody)).toBe('accepted')
    expect(s.fd.status('node-d')).toBe('suspect')
    let seq = 0
    const relaying = (h: Record<string, number>) =>
      encodeBeat({ n: 'node-b', t: Date.now(), s: seq++, d: '0'.repeat(16), h })
    // node-b heard node-d's beat of time 500 (node-d's clock). Claims about us, about node-b itself
    // and about a node we hold no record of are not taken.
    expect(
      s.fd.receive(peerB.toString(), relaying({ 'node-d': 500, 'node-a': 1, 'node-b': 1, 'node-x': 1 })),
    ).toBe('accepted')
    expect(s.fd.status('node-d')).toBe('alive')
    expect(s.fd.lastSeen('node-d')).toBe(NOW)
    expect(s.fd.status('node-x')).toBeUndefined()
    expect(s.events.at(-1)).toMatchObject({ event: 'node:alive', nodeId: 'node-d', previous: 'suspect' })
    // What we relay: each node we believe alive, with the newest beat time we know of.
    expect(s.fd.relays().h).toEqual({ 'node-b': NOW, 'node-d': 500, 'node-y': NOW })
    // Newer beats keep it alive, relayed for as long as node-d beats.
    for (let i = 1; i <= 5; i++) {
      await vi.advanceTimersByTimeAsync(HB)
      s.fd.receive(peerB.toString(), relaying({ 'node-d': 500 + i * HB }))
    }
    expect(s.fd.status('node-d')).toBe('alive')
    const lastNews = Date.now()
    // node-d stops: relays keep naming its last beat (echoes of it, however many), which is no news.
    for (let i = 0; i < 4; i++) {
      await vi.advanceTimersByTimeAsync(HB)
      s.fd.receive(peerB.toString(), relaying({ 'node-d': 500 + 5 * HB }))
    }
    expect(s.fd.status('node-d')).toBe('suspect')
    expect(s.fd.lastSeen('node-d')).toBe(lastNews)
    expect(Object.keys(s.fd.relays().h)).toEqual(['node-b'])
    // Relays from a beat that is not believed are not believed either.
    expect(s.fd.receive(peerC.toString(), relaying({ 'node-d': Date.now() }))).toBe('ignored-peer-mismatch')
    expect(s.fd.status('node-d')).toBe('suspect')
  })

  it("believes a relay of a node that signs beats only with that node's own signature of the time", async () => {
    const peerB = await randomPeerId()
    const d = await nodeIdentity('node-d')
    const forger = await nodeIdentity('node-d')
    s = await setup({}, async (replica) => {
      const version = { ts: NOW - 60_000, c: 0, node: 'node-d' }
      const record = d.signer.sign(nodeRecord('node-d', NOW - 60_000, { peerId: d.signer.peerId }), version)
      await replica.apply([{ kind: 'node', id: 'node-d', version, value: record }], 'gossip')
      await receiveRecord(replica, nodeRecord('node-b', NOW, { peerId: peerB.toString() }), NOW)
    })
    expect(s.fd.status('node-d')).toBe('suspect')
    let seq = 0
    const relaying = (t: number, r?: Record<string, string>) =>
      encodeBeat({
        n: 'node-b',
        t: Date.now(),
        s: seq++,
        d: '0'.repeat(16),
        h: { 'node-d': t },
        ...(r && { r }),
      })
    // Unsigned, signed by another key, and node-d's signature of another time: none counts.
    for (const r of [
      undefined,
      { 'node-d': forger.signer.signBeat(500) },
      { 'node-d': d.signer.signBeat(499) },
    ]) {
      expect(s.fd.receive(peerB.toString(), relaying(500, r))).toBe('accepted')
      expect(s.fd.status('node-d')).toBe('suspect')
    }
    expect(s.fd.relayStats).toEqual({ believed: 0, refused: 3 })
    // Its own signature of that time counts, and is what we relay on.
    const signature = d.signer.signBeat(500)
    s.fd.receive(peerB.toString(), relaying(500, { 'node-d': signature }))
    expect(s.fd.status('node-d')).toBe('alive')
    expect(s.fd.relays()).toMatchObject({ h: { 'node-d': 500 }, r: { 'node-d': signature } })
    expect(s.fd.relayStats).toEqual({ believed: 1, refused: 3 })
  })

  it('forgets a node known only from beats once it is unreachable, and one whose record is deleted', async () => {
    const peerB = await randomPeerId()
    const peerC = await randomPeerId()
    s = await setup({}, (replica) =>
      receiveRecord(replica, nodeRecord('node-c', NOW, { peerId: peerC.toString() })),
    )
    s.fd.receive(peerB.toString(), beat('node-b', 0))
    await vi.advanceTimersByTimeAsync(6600)
    expect(s.events.filter((e) => e.nodeId === 'node-b').map((e) => e.event)).toEqual([
      'node:alive',
      'node:suspect',
      'node:unreachable',
    ])
    expect(s.fd.status('node-b')).toBeUndefined()
    expect(s.fd.status('node-c')).toBe('unreachable')
    await s.replica.remove('node', 'node-c')
    expect(s.fd.status('node-c')).toBeUndefined()
  })

  it('emits digest:mismatch after two differing beats in a row, then backs off while it persists', async () => {
    const peerB = await randomPeerId()
    s = await setup()
    const mismatches: string[] = []
    s.fd.on('digest:mismatch', ({ peerId, nodeId }) => mismatches.push(`${nodeId}@${peerId}`))
    const ours = () => digestPrefix(s.replica.digest())
    const other = 'f'.repeat(16)
    let seq = 0
    const send = (d: string) => s.fd.receive(peerB.toString(), beat('node-b', seq++, d))

    await send(other)
    await send(ours())
    await send(other)
    expect(mismatches).toEqual([])
    await send(other)
    expect(mismatches).toEqual([`node-b@${peerB}`])
    // Still different: the next event needs 4 beats, then 8.
    for (let i = 0; i < 3; i++) await send(other)
    expect(mismatches).toHaveLength(1)
    await send(other)
    expect(mismatches).toHaveLength(2)
    for (let i = 0; i < 8; i++) await send(other)
    expect(mismatches).toHaveLength(3)
    // A match resets it to two. Our digest moves too: it is compared when the beat arrives.
    const before = ours()
    await receiveRecord(s.replica, nodeRecord('node-z', NOW))
    expect(ours()).not.toBe(before)
    await send(ours())
    await send(before)
    await send(before)
    expect(mismatches).toHaveLength(4)
  })

  it('survives a listener that throws', async () => {
    const peerB = await randomPeerId()
    s = await setup()
    s.fd.on('node:alive', () => {
      throw new Error('listener bug')
    })
    expect(s.fd.receive(peerB.toString(), beat('node-b', 0))).toBe('accepted')
    expect(s.fd.status('node-b')).toBe('alive')
    await receiveRecord(s.replica, nodeRecord('node-c', NOW))
    expect(s.fd.status('node-c')).toBe('alive')
  })

  it('stop() removes the listeners and every timer', async () => {
    s = await setup({}, (replica) => receiveRecord(replica, nodeRecord('node-b', NOW)))
    expect(vi.getTimerCount()).toBe(1)
    s.fd.start() // idempotent
    expect(vi.getTimerCount()).toBe(1)
    s.fd.stop()
    expect(vi.getTimerCount()).toBe(0)
    expect(s.beats.listenerCount('frame')).toBe(0)
    expect(s.beats.listenerCount('oversized')).toBe(0)
    expect(s.replica.listenerCount('change')).toBe(0)
    expect(s.fd.status('node-b')).toBeUndefined()
    // Restartable.
    s.fd.start()
    expect(s.fd.status('node-b')).toBe('alive')
  })

  it('validates its Init', async () => {
    const replica = await memoryReplica('node-a')
    const components = { beats: new FakeBeatSource(), replica, log: testLogger(), nodeId: 'node-a' }
    expect(() => new FailureDetector({ digestMismatchBeats: 0 }, components)).toThrow(/digestMismatchBeats/)
    expect(() => new FailureDetector({ unreachableAfterMs: 1000 }, components)).toThrow(InitError)
  })
})
