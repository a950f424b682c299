import { generateKeyPair } from '@libp2p/crypto/keys'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type Beat,
  encodeBeat,
  type LivenessChange,
  type LivenessStatus,
  type RecordReason,
} from '../../src/liveness/index.ts'
import { BEATS_PROTOCOL, MAX_BEAT_BYTES } from '../../src/model/wire.ts'
import { createP2PNode, type RegistryLibp2p } from '../../src/p2p/libp2p-node.ts'
import { compareVersions } from '../../src/replica/version.ts'
import { waitFor } from '../support/wait.ts'
import { connectAll, type LivenessNode, startLivenessCluster, startLivenessNode } from './liveness-cluster.ts'

// Small intervals keep the suite quick: suspect after 600 ms, unreachable after 1200 ms, sweeps every 100 ms.
const HB = 200
const INIT = { heartbeatIntervalMs: HB, recordRefreshMs: 60_000 }
const SUSPECT = 3 * HB
const UNREACHABLE = 6 * HB
const SWEEP = HB / 2
/** Room for event-loop delays of a busy test machine, on top of the formula's bound. */
const SLACK = 400

const allAlive = (nodes: readonly LivenessNode[]) =>
  nodes.every((a) =>
    nodes.every(
      (b) =>
        a === b ||
        (a.detector.status(b.id) === 'alive' &&
          a.detector.snapshot().find((e) => e.nodeId === b.id)?.lastBeatMs !== undefined),
    ),
  )

function recordTransitions(nodes: readonly LivenessNode[]) {
  const log: Array<{ observer: string; status: LivenessStatus; at: number } & LivenessChange> = []
  for (const n of nodes) {
    for (const status of ['alive', 'suspect', 'unreachable'] as const) {
      n.detector.on(`node:${status}`, (change) =>
        log.push({ observer: n.id, status, at: Date.now(), ...change }),
      )
    }
  }
  return log
}

describe('beats: liveness of nodes of the previous release over libp2p (3 nodes on 127.0.0.1)', () => {
  let nodes: LivenessNode[] = []
  let extra: RegistryLibp2p | undefined
  afterEach(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
    await extra?.stop()
    nodes = []
    extra = undefined
  })

  it('beats keep every node alive everywhere; the record is written on start, not on every beat', async () => {
    nodes = await startLivenessCluster(3, INIT, { startHeartbeats: false, protocol: 'beats' })
    const writes = new Map<string, RecordReason[]>(nodes.map((n) => [n.id, []]))
    const localNodeWrites = new Map<string, number>(nodes.map((n) => [n.id, 0]))
    const beats = new Map<string, number[]>(nodes.map((n) => [n.id, []]))
    for (const n of nodes) {
      n.heartbeat.on('record', (_node, reason) => writes.get(n.id)!.push(reason))
      n.heartbeat.on('beat', (_beat, bytes) => beats.get(n.id)!.push(bytes))
      n.replica.on('change', (changes, source) => {
        if (source === 'local')
          localNodeWrites.set(
            n.id,
            localNodeWrites.get(n.id)! + changes.filter((c) => c.kind === 'node').length,
          )
      })
    }
    const transitions = recordTransitions(nodes)
    await Promise.all(nodes.map((n) => n.heartbeat.start()))
    await waitFor('every node hears beats from every other', () => allAlive(nodes), { timeoutMs: 5000 })
    expect(transitions.every((t) => t.status === 'alive')).toBe(true)
    transitions.length = 0
    for (const b of beats.values()) b.length = 0

    // Twelve more intervals: nobody is suspected, and nobody rewrites its record.
    await waitFor('12 beats from every node', () => [...beats.values()].every((b) => b.length >= 12), {
      timeoutMs: 6000,
    })
    expect(transitions).toEqual([])
    expect(allAlive(nodes)).toBe(true)
    expect([...writes.values()]).toEqual([['start'], ['start'], ['start']])
    expect([...localNodeWrites.values()]).toEqual([1, 1, 1])
    // Every node holds every record (written on start, spread by change gossip), with peer id and addresses.
    for (const a of nodes) {
      for (const b of nodes) {
        const record = a.replica.get('node', b.id)
        expect(record?.peerId).toBe(b.libp2p.peerId.toString())
        expect(record?.multiaddrs).toEqual(b.libp2p.getMultiaddrs().map(String).sort())
        expect(record?.usage?.memory.total).toBeGreaterThan(0)
      }
    }
    for (const a of nodes) {
      expect(a.detector.counts().accepted).toBeGreaterThanOrEqual(2 * 10)
      expect(a.detector.counts()['rejected-malformed']).toBe(0)
    }
    const sizes = [...beats.values()].flat()
    console.info(`beat payload: ${Math.min(...sizes)}-${Math.max(...sizes)} bytes`)
    // About 150 bytes of head with the sender's signature (88), about 120 per relayed node with its own.
    expect(Math.max(...sizes)).toBeLessThan(160 + 2 * 120)
  })

  it('flags a stopped node suspect, then unreachable, within the thresholds on the others', async () => {
    nodes = await startLivenessCluster(3, INIT, { protocol: 'beats' })
    await waitFor('all alive', () => allAlive(nodes), { timeoutMs: 5000 })
    const [a, b, c] = nodes as [LivenessNode, LivenessNode, LivenessNode]
    const transitions = recordTransitions([a, b])
    const stoppedAt = Date.now()
    await c.stop()
    await waitFor(
      'node-2 unreachable on both others',
      () => [a, b].every((n) => n.detector.status('node-2') === 'unreachable'),
      { timeoutMs: 5000 },
    )
    for (const observer of [a, b]) {
      const seen = transitions.filter((t) => t.observer === observer.id)
      expect(seen.map((t) => [t.nodeId, t.status])).toEqual([
        ['node-2', 'suspect'],
        ['node-2', 'unreachable'],
      ])
      const [suspect, unreachable] = seen as [(typeof seen)[0], (typeof seen)[0]]
      // Measured from the last beat heard: threshold + at most one sweep (+ slack for the machine).
      expect(suspect.at - suspect.lastSeenMs).toBeGreaterThanOrEqual(SUSPECT)
      expect(suspect.at - suspect.lastSeenMs).toBeLessThanOrEqual(SUSPECT + 1.1 * SWEEP + SLACK)
      expect(unreachable.at - unreachable.lastSeenMs).toBeGreaterThanOrEqual(UNREACHABLE)
      expect(unreachable.at - unreachable.lastSeenMs).toBeLessThanOrEqual(UNREACHABLE + 1.1 * SWEEP + SLACK)
      // Measured from the stop: the last beat came at most one interval before it.
      expect(unreachable.at - stoppedAt).toBeLessThanOrEqual(UNREACHABLE + 1.1 * SWEEP + SLACK)
      console.info(
        `${observer.id}: node-2 suspect ${suspect.at - stoppedAt} ms, unreachable ${unreachable.at - stoppedAt} ms after stop`,
      )
    }
    expect(a.detector.status('node-1')).toBe('alive')
    expect(b.detector.status('node-0')).toBe('alive')
  })

  it('overrides an admin delete of a live node with its next heartbeat, on every replica', async () => {
    nodes = await startLivenessCluster(3, INIT, { protocol: 'beats' })
    await waitFor('all alive', () => allAlive(nodes), { timeoutMs: 5000 })
    const [a, b, c] = nodes as [LivenessNode, LivenessNode, LivenessNode]
    const reasons: RecordReason[] = []
    b.heartbeat.on('record', (_node, reason) => reasons.push(reason))
    const tombstone = (await a.replica.remove('node', 'node-1'))!
    expect(a.replica.get('node', 'node-1')).toBeUndefined()
    const deletedAt = Date.now()
    await waitFor(
      'node-1 back on every replica, newer than the delete',
      () =>
        nodes.every((n) => {
          const entry = n.replica.entry('node/node-1')
          return entry?.value != null && compareVersions(entry.version, tombstone.version) > 0
        }),
      { timeoutMs: 5000 },
    )
    console.info(`admin delete overridden on all replicas in ${Date.now() - deletedAt} ms`)
    expect(reasons).toEqual(['reassert'])
    await waitFor('node-1 alive again on node-0', () => a.detector.status('node-1') === 'alive', {
      timeoutMs: 2000,
    })
    expect(c.detector.status('node-1')).toBe('alive')
  })

  it('hears of a node it is not connected to through relayed beats, and flags it when it stops', async () => {
    // A line: node-0 — node-1 — node-2. node-0 and node-2 never connect.
    nodes = await Promise.all(
      [0, 1, 2].map((i) => startLivenessNode(`node-${i}`, INIT, { protocol: 'beats' })),
    )
    const [a, b, c] = nodes as [LivenessNode, LivenessNode, LivenessNode]
    await connectAll([a, b])
    await connectAll([b, c])
    await Promise.all(nodes.map((n) => n.heartbeat.start()))
    // Relays count only for nodes whose record is held. Records go by change gossip, which does not
    // resend to peers grafted later, and this test runs no anti-entropy: hand them over as it would.
    for (const [from, to] of [
      [c, a],
      [a, c],
    ] as const) {
      const entry = from.replica.entry(`node/${from.id}`)!
      await to.replica.apply(
        [{ kind: 'node', id: from.id, version: entry.version, value: entry.value }],
        'sync',
      )
    }
    const beating = (observer: LivenessNode, id: string) =>
      observer.detector.snapshot().find((e) => e.nodeId === id)?.lastBeatMs !== undefined
    await waitFor(
      'node-0 and node-2 hear node-1, and know each other alive',
      () =>
        beating(a, 'node-1') &&
        beating(c, 'node-1') &&
        a.detector.status('node-2') === 'alive' &&
        c.detector.status('node-0') === 'alive',
      { timeoutMs: 5000 },
    )
    expect(a.libp2p.getPeers().map(String)).not.toContain(c.libp2p.peerId.toString())
    // Relayed only: no beat of node-2 ever reached node-0 directly.
    expect(a.detector.snapshot().find((e) => e.nodeId === 'node-2')?.lastBeatMs).toBeUndefined()
    // Stays alive for many intervals on relays alone.
    const transitions = recordTransitions([a])
    const beatsOfC: number[] = []
    c.heartbeat.on('beat', () => beatsOfC.push(Date.now()))
    await waitFor('10 more beats of node-2', () => beatsOfC.length >= 10, { timeoutMs: 5000 })
    // Never unreachable; on a loaded machine a beat late by more than the suspect threshold shows as
    // one brief suspicion, refuted by the next relay (seen once in CI), which is not what this tests.
    expect(transitions.filter((t) => t.status === 'unreachable')).toEqual([])
    expect(transitions.filter((t) => t.status === 'suspect').length).toBeLessThanOrEqual(1)
    transitions.length = 0
    // Its record (written at start) is long past the suspect threshold: relays keep it fresh.
    expect(Date.now() - a.detector.lastSeen('node-2')!).toBeLessThan(SUSPECT)
    expect(Date.now() - Date.parse(a.replica.get('node', 'node-2')!.lastHeartbeat)).toBeGreaterThan(SUSPECT)
    const stoppedAt = Date.now()
    await c.stop()
    await waitFor('node-2 unreachable on node-0', () => a.detector.status('node-2') === 'unreachable', {
      timeoutMs: 5000,
    })
    const [suspect, unreachable] = transitions
    expect(suspect).toMatchObject({ nodeId: 'node-2', status: 'suspect' })
    expect(unreachable).toMatchObject({ nodeId: 'node-2', status: 'unreachable' })
    // As fast as for a direct peer: relays carry the age of the last evidence, they do not renew it.
    expect(unreachable!.at - stoppedAt).toBeLessThanOrEqual(UNREACHABLE + 1.1 * SWEEP + SLACK)
    expect(unreachable!.at - unreachable!.lastSeenMs).toBeGreaterThanOrEqual(UNREACHABLE)
    console.info(`relayed: node-2 unreachable on node-0 ${unreachable!.at - stoppedAt} ms after stop`)
  })

  it('rejects garbage on the beats protocol without crashing, and nothing reaches other nodes', async () => {
    nodes = await startLivenessCluster(2, INIT, { protocol: 'beats' })
    await waitFor('all alive', () => allAlive(nodes), { timeoutMs: 5000 })
    const [a, b] = nodes as [LivenessNode, LivenessNode]
    // A peer of node-0 only, writing raw frames on the beats protocol.
    extra = await createP2PNode({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
    })
    const mallory = extra
    const send = async (frames: Uint8Array[]) => {
      const stream = await mallory.dialProtocol(a.libp2p.getMultiaddrs()[0]!, BEATS_PROTOCOL)
      await pipe(frames, (source) => lp.encode(source), stream).catch(() => undefined)
    }
    const beat = (n: string): Uint8Array =>
      encodeBeat({ n, t: Date.now(), s: 1e6, d: '0'.repeat(16) } satisfies Beat)
    await send([
      crypto.getRandomValues(new Uint8Array(100)),
      new TextEncoder().encode('{"hello":"world"}'),
      new TextEncoder().encode(JSON.stringify({ n: 'node-9', t: 'soon', s: 0, d: '0'.repeat(16) })),
      beat('node-1'), // node-1's record names another peer
      beat('node-0'), // claims the receiver's own id
    ])
    // Over the cap: the stream is reset before the body is read.
    await send([new Uint8Array(MAX_BEAT_BYTES + 100).fill(0x7b)])
    await waitFor('node-0 judged all six', () => {
      const c = a.detector.counts()
      return (
        c['rejected-malformed'] + c['rejected-oversized'] + c['ignored-peer-mismatch'] + c['ignored-self'] >=
        6
      )
    })
    expect(a.detector.counts()).toMatchObject({
      'rejected-malformed': 3,
      'rejected-oversized': 1,
      'ignored-peer-mismatch': 1,
      'ignored-self': 1,
    })
    // Still working: node-1 stays alive on node-0 (fresh beats keep arriving), node-1 saw none of it.
    const accepted = a.detector.counts().accepted
    await waitFor('more beats accepted', () => a.detector.counts().accepted >= accepted + 3)
    expect(a.detector.status('node-1')).toBe('alive')
    expect(a.detector.status('node-9')).toBeUndefined()
    const bc = b.detector.counts()
    expect(
      bc['rejected-malformed'] + bc['rejected-oversized'] + bc['ignored-peer-mismatch'] + bc['ignored-self'],
    ).toBe(0)
  })
})
