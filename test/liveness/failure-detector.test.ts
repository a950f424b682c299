import { TopicValidatorResult } from '@libp2p/interface'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  type Beat,
  classify,
  digestPrefix,
  encodeBeat,
  FailureDetector,
  type FailureDetectorInit,
  type LivenessChange,
  LivenessConfigError,
  MAX_BEAT_BYTES,
  resolveThresholds,
} from '../../src/liveness/index.ts'
import { BEATS_TOPIC } from '../../src/p2p/constants.ts'
import type { Replica } from '../../src/replica/replica.ts'
import { FakePubSub, memoryReplica, nodeRecord, randomPeerId, receiveRecord, testLogger } from './fixtures.ts'

const NOW = Date.UTC(2026, 10, 27, 12, 0, 0)
const HB = 1000 // thresholds: suspect 3000, unreachable 6000, sweep every 500 ± 10%

interface Setup {
  pubsub: FakePubSub
  replica: Replica
  fd: FailureDetector
  events: Array<{ event: string; at: number } & LivenessChange>
}

async function setup(
  init: FailureDetectorInit = {},
  before?: (replica: Replica) => Promise<void>,
): Promise<Setup> {
  const pubsub = new FakePubSub()
  const replica = await memoryReplica('node-a')
  await before?.(replica)
  const fd = new FailureDetector(
    { heartbeatIntervalMs: HB, ...init },
    { libp2p: { services: { pubsub } }, replica, log: testLogger(), nodeId: 'node-a' },
  )
  const events: Setup['events'] = []
  for (const event of ['node:alive', 'node:suspect', 'node:unreachable'] as const) {
    fd.on(event, (change) => events.push({ event, at: Date.now() - NOW, ...change }))
  }
  fd.start()
  return { pubsub, replica, fd, events }
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
      expect.objectContaining({ name: 'LivenessConfigError', option: 'unreachableAfterMs' }),
    )
    expect(() => resolveThresholds({ heartbeatIntervalMs: 0 })).toThrow(LivenessConfigError)
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
    expect(s.pubsub.topics.has(BEATS_TOPIC)).toBe(true)

    // Ten beats, one per interval: alive throughout, and no event beyond the first classification.
    let seq = 0
    for (let i = 0; i < 10; i++) {
      await vi.advanceTimersByTimeAsync(HB)
      expect(await s.pubsub.deliver(peerB, beat('node-b', seq++))).toBe(TopicValidatorResult.Accept)
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
    await s.pubsub.deliver(peerB, beat('node-b', seq++))
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
    expect(await s.pubsub.deliver(impostor, beat('node-a', 0))).toBe(TopicValidatorResult.Ignore)
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
    const reject = TopicValidatorResult.Reject
    const ignore = TopicValidatorResult.Ignore
    const accept = TopicValidatorResult.Accept
    const oversized = JSON.stringify({
      n: 'node-x',
      t: NOW,
      s: 0,
      d: '0'.repeat(16),
      pad: 'x'.repeat(MAX_BEAT_BYTES),
    })
    const cases: Array<[Uint8Array | string, TopicValidatorResult]> = [
      [crypto.getRandomValues(new Uint8Array(64)), reject],
      [new Uint8Array([0xff, 0xfe, 0x7b]), reject],
      ['not json', reject],
      ['[1,2,3]', reject],
      ['null', reject],
      ['{"n":"node-x","t":1,"s":0}', reject],
      ['{"n":"bad id!","t":1,"s":0,"d":"0000000000000000"}', reject],
      ['{"n":"node-x","t":-1,"s":0,"d":"0000000000000000"}', reject],
      ['{"n":"node-x","t":1,"s":0.5,"d":"0000000000000000"}', reject],
      ['{"n":"node-x","t":1,"s":0,"d":"ABCDEF0000000000"}', reject],
      [oversized, reject],
    ]
    for (const [data, expected] of cases) expect(await s.pubsub.deliver(stranger, data)).toBe(expected)
    // node-b's record names peerB: the same beat from another peer is not believed.
    expect(await s.pubsub.deliver(peerC, beat('node-b', 0))).toBe(ignore)
    expect(await s.pubsub.deliver(peerB, beat('node-b', 5))).toBe(accept)
    // A late copy of an older beat is dropped; a restarted sender (s from 0, later t) is heard.
    expect(await s.pubsub.deliver(peerB, beat('node-b', 4, undefined, NOW - 1))).toBe(ignore)
    await vi.advanceTimersByTimeAsync(10)
    expect(await s.pubsub.deliver(peerB, beat('node-b', 0))).toBe(accept)
    // Without a record, the first peer to beat for an id keeps it until it goes unreachable.
    expect(await s.pubsub.deliver(peerC, beat('node-c', 0))).toBe(accept)
    expect(await s.pubsub.deliver(stranger, beat('node-c', 1))).toBe(ignore)
    // Unknown fields are allowed (the format is append-only).
    expect(await s.pubsub.deliver(peerC, '{"n":"node-c","t":1,"s":2,"d":"0000000000000000","x":[1]}')).toBe(
      accept,
    )
    expect(s.fd.counts()).toEqual({
      accepted: 4,
      'rejected-unsigned': 0,
      'rejected-oversized': 1,
      'rejected-malformed': 10,
      'ignored-self': 0,
      'ignored-peer-mismatch': 2,
      'ignored-stale': 1,
      'ignored-capacity': 0,
    })
    expect(s.fd.status('node-c')).toBe('alive')
    expect(s.fd.snapshot().map((e) => [e.nodeId, e.status, e.peerId])).toEqual([
      ['node-a', 'alive', undefined],
      ['node-b', 'alive', peerB.toString()],
      ['node-c', 'alive', peerC.toString()],
    ])
  })

  it('forgets a node known only from beats once it is unreachable, and one whose record is deleted', async () => {
    const peerB = await randomPeerId()
    const peerC = await randomPeerId()
    s = await setup({}, (replica) =>
      receiveRecord(replica, nodeRecord('node-c', NOW, { peerId: peerC.toString() })),
    )
    await s.pubsub.deliver(peerB, beat('node-b', 0))
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
    const send = (d: string) => s.pubsub.deliver(peerB, beat('node-b', seq++, d))

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
    expect(await s.pubsub.deliver(peerB, beat('node-b', 0))).toBe(TopicValidatorResult.Accept)
    expect(s.fd.status('node-b')).toBe('alive')
    await receiveRecord(s.replica, nodeRecord('node-c', NOW))
    expect(s.fd.status('node-c')).toBe('alive')
  })

  it('stop() removes the validator, the subscription, the listeners and every timer', async () => {
    s = await setup({}, (replica) => receiveRecord(replica, nodeRecord('node-b', NOW)))
    expect(vi.getTimerCount()).toBe(1)
    s.fd.start() // idempotent
    expect(vi.getTimerCount()).toBe(1)
    s.fd.stop()
    expect(vi.getTimerCount()).toBe(0)
    expect(s.pubsub.topicValidators.size).toBe(0)
    expect(s.pubsub.topics.size).toBe(0)
    expect(s.pubsub.listenerCount('message')).toBe(0)
    expect(s.replica.listenerCount('change')).toBe(0)
    expect(s.fd.status('node-b')).toBeUndefined()
    // Restartable.
    s.fd.start()
    expect(s.fd.status('node-b')).toBe('alive')
  })

  it('validates its Init', async () => {
    const pubsub = new FakePubSub()
    const replica = await memoryReplica('node-a')
    const components = { libp2p: { services: { pubsub } }, replica, log: testLogger(), nodeId: 'node-a' }
    expect(() => new FailureDetector({ digestMismatchBeats: 0 }, components)).toThrow(/digestMismatchBeats/)
    expect(() => new FailureDetector({ unreachableAfterMs: 1000 }, components)).toThrow(LivenessConfigError)
  })
})
