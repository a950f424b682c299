import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  decodeBeat,
  digestPrefix,
  Heartbeat,
  type HeartbeatInit,
  InitError,
  type NodeSelf,
  type RecordReason,
} from '../../src/liveness/index.ts'
import type { GpuInfo } from '../../src/liveness/nvidia-smi.ts'
import type { Node } from '../../src/model/index.ts'
import { MAX_BEAT_BYTES } from '../../src/model/wire.ts'
import { checkNodeSignature } from '../../src/replica/node-signature.ts'
import type { Replica } from '../../src/replica/replica.ts'
import { compareVersions } from '../../src/replica/version.ts'
import {
  fakeBeatSink,
  fakeHeartbeatLibp2p,
  fakeResources,
  memoryReplica,
  nodeIdentity,
  randomPeerId,
  testLogger,
} from './fixtures.ts'

const NOW = Date.UTC(2026, 10, 27, 12, 0, 0)
const HB = 1000

const GPU: GpuInfo = {
  intraNodeId: 0,
  name: 'NVIDIA A100',
  uuid: 'GPU-1',
  memoryTotal: 40960,
  gpuUtilization: 3,
}

async function setup(init: HeartbeatInit = {}) {
  const { peerId, signer } = await nodeIdentity('node-a')
  const libp2p = fakeHeartbeatLibp2p(peerId)
  const beats = fakeBeatSink()
  const replica = await memoryReplica('node-a', signer)
  const resources = fakeResources()
  const self: NodeSelf = { id: 'node-a', url: 'http://node-a.test:11337', region: 'eu-1' }
  const hb = new Heartbeat(
    { heartbeatIntervalMs: HB, recordRefreshMs: 60_000, ...init },
    { libp2p, beats, replica, log: testLogger(), self: () => self, resources },
  )
  const writes: Array<{ reason: RecordReason; node: Node }> = []
  hb.on('record', (node, reason) => writes.push({ reason, node }))
  const localNodeWrites = () => writes.length
  return { hb, libp2p, beats, replica, resources, self, writes, peerId, signer, localNodeWrites }
}

describe('Heartbeat', () => {
  let hb: Heartbeat | undefined
  beforeEach(() => {
    vi.useFakeTimers({ now: NOW })
  })
  afterEach(async () => {
    await hb?.stop()
    vi.useRealTimers()
  })

  it('writes the record on start, then beats every interval without rewriting it', async () => {
    const s = await setup()
    hb = s.hb
    let replicaWrites = 0
    s.replica.on('change', (changes, source) => {
      if (source === 'local') replicaWrites += changes.length
    })
    await s.hb.start()
    expect(s.writes.map((w) => w.reason)).toEqual(['start'])
    const record = s.replica.get('node', 'node-a')!
    expect(record).toEqual({
      id: 'node-a',
      url: 'http://node-a.test:11337',
      region: 'eu-1',
      lastHeartbeat: new Date(NOW).toISOString(),
      usage: {
        cpu: { used: 0.5, total: 4, percent: 12.5 },
        memory: { used: 1024, total: 4096, percent: 25 },
        disk: { used: 10, total: 100, percent: 10 },
      },
      gpus: [],
      multiaddrs: [`/ip4/127.0.0.1/tcp/11338/p2p/${s.peerId}`],
      peerId: s.peerId.toString(),
      signature: expect.any(String),
      signs: ['beat', 'status', 'alive', 'datagram'],
    })
    expect(checkNodeSignature(record, s.replica.entry('node/node-a')!.version)).toBe('valid')
    expect(s.beats.sent).toHaveLength(1)

    await vi.advanceTimersByTimeAsync(20 * HB)
    // One beat per interval ±10%: 19-23 in 20 intervals, plus the one at start.
    expect(s.beats.sent.length).toBeGreaterThanOrEqual(19)
    expect(s.beats.sent.length).toBeLessThanOrEqual(24)
    expect(replicaWrites).toBe(1)
    expect(s.writes).toHaveLength(1)

    const beats = s.beats.sent.map((b) => decodeBeat(b))
    expect(beats.map((b) => b.s)).toEqual(beats.map((_, i) => i))
    expect(beats.every((b) => b.n === 'node-a' && b.d === digestPrefix(s.replica.digest()))).toBe(true)
    expect(Math.max(...s.beats.sent.map((b) => b.length))).toBeLessThan(100)
  })

  it('rewrites the record at once when url, zone, multiaddrs or the GPU list change, not for GPU load', async () => {
    const s = await setup()
    hb = s.hb
    await s.hb.start()
    s.self.url = 'http://node-a.test:9999'
    await vi.advanceTimersByTimeAsync(1.1 * HB)
    expect(s.writes.map((w) => w.reason)).toEqual(['start', 'changed'])
    expect(s.replica.get('node', 'node-a')?.url).toBe('http://node-a.test:9999')

    s.self.availabilityZone = 'eu-1a'
    await vi.advanceTimersByTimeAsync(1.1 * HB)
    s.libp2p.addrs.push('/ip4/127.0.0.2/tcp/11338')
    await vi.advanceTimersByTimeAsync(1.1 * HB)
    s.resources.gpuList = [GPU]
    await vi.advanceTimersByTimeAsync(1.1 * HB)
    s.resources.gpuList = [{ ...GPU, gpuUtilization: 97, temperature: 80 }]
    await vi.advanceTimersByTimeAsync(5 * HB)
    expect(s.writes.map((w) => w.reason)).toEqual(['start', 'changed', 'changed', 'changed', 'changed'])
    const record = s.replica.get('node', 'node-a')!
    expect(record.availabilityZone).toBe('eu-1a')
    expect(record.multiaddrs).toHaveLength(2)
    expect(record.gpus).toEqual([{ id: 'http://node-a.test:9999:0', ...GPU }])
  })

  it('refreshes the record every recordRefreshMs (±10%)', async () => {
    const s = await setup({ recordRefreshMs: 10 * HB })
    hb = s.hb
    await s.hb.start()
    await vi.advanceTimersByTimeAsync(8 * HB)
    expect(s.writes).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(5 * HB)
    expect(s.writes.map((w) => w.reason)).toEqual(['start', 'refresh'])
    const [start, refresh] = s.writes
    const gap = Date.parse(refresh!.node.lastHeartbeat) - Date.parse(start!.node.lastHeartbeat)
    expect(gap).toBeGreaterThanOrEqual(9 * HB)
    expect(gap).toBeLessThanOrEqual(12.2 * HB)
  })

  it('re-asserts its record at once after an admin delete, and after a write by another agent', async () => {
    const s = await setup()
    hb = s.hb
    await s.hb.start()
    const deleted = await s.replica.remove('node', 'node-a')
    await vi.advanceTimersByTimeAsync(0)
    expect(s.writes.map((w) => w.reason)).toEqual(['start', 'reassert'])
    const back = s.replica.entry('node/node-a')!
    expect(back.value).not.toBeNull()
    expect(compareVersions(back.version, deleted!.version)).toBeGreaterThan(0)

    // Our own past (an earlier process with our key, or a second agent with a copy of our data dir)
    // wrote our record: write ours over it, but at most once per heartbeat, so two such agents do not
    // fight at gossip speed. (Anyone else's write of our record is refused: it is signed.)
    const version = { ts: Date.now() + 1, c: 0, node: 'node-a' }
    const foreign = s.signer.sign({ ...s.replica.get('node', 'node-a')!, url: 'http://impostor:1' }, version)
    await s.replica.apply([{ kind: 'node', id: 'node-a', version, value: foreign }], 'gossip')
    await vi.advanceTimersByTimeAsync(0)
    expect(s.replica.get('node', 'node-a')?.url).toBe('http://impostor:1')
    await vi.advanceTimersByTimeAsync(1.1 * HB)
    expect(s.writes.map((w) => w.reason)).toEqual(['start', 'reassert', 'reassert'])
    expect(s.replica.get('node', 'node-a')?.url).toBe('http://node-a.test:11337')
  })

  it('keeps beating when sending fails', async () => {
    const s = await setup()
    hb = s.hb
    s.beats.fail = true
    const beats: number[] = []
    s.hb.on('beat', (_beat, bytes) => beats.push(bytes))
    await s.hb.start()
    await vi.advanceTimersByTimeAsync(3.5 * HB)
    expect(beats.length).toBeGreaterThanOrEqual(3)
    expect(s.hb.isStarted).toBe(true)
  })

  it('keeps beating when a listener throws', async () => {
    const s = await setup()
    hb = s.hb
    s.hb.on('beat', () => {
      throw new Error('listener bug')
    })
    await s.hb.start()
    await vi.advanceTimersByTimeAsync(3.5 * HB)
    expect(s.beats.sent.length).toBeGreaterThanOrEqual(3)
  })

  it('stop() leaves no timer and no listener; start() is idempotent and restartable', async () => {
    const s = await setup()
    hb = s.hb
    await Promise.all([s.hb.start(), s.hb.start()])
    expect(s.writes).toHaveLength(1)
    expect(vi.getTimerCount()).toBe(1)
    await s.hb.stop()
    expect(vi.getTimerCount()).toBe(0)
    expect(s.replica.listenerCount('change')).toBe(0)
    const published = s.beats.sent.length
    await vi.advanceTimersByTimeAsync(10 * HB)
    expect(s.beats.sent).toHaveLength(published)
    await s.hb.start()
    expect(s.writes.map((w) => w.reason)).toEqual(['start', 'start'])
    expect(decodeBeat(s.beats.sent.at(-1)!).s).toBe(0)
  })

  it('keeps one timer when stopped and restarted while starting', async () => {
    const s = await setup()
    hb = s.hb
    const first = s.hb.start()
    const stopped = s.hb.stop()
    const second = s.hb.start()
    await Promise.all([first, stopped, second])
    expect(s.hb.isStarted).toBe(true)
    expect(vi.getTimerCount()).toBe(1)
    await s.hb.stop()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('fails to start on a record that breaks the model, and stays stopped', async () => {
    const s = await setup()
    hb = s.hb
    s.self.url = 'not a url'
    await expect(s.hb.start()).rejects.toMatchObject({ name: 'ValidationError' })
    expect(s.hb.isStarted).toBe(false)
    expect(vi.getTimerCount()).toBe(0)
    expect(s.replica.listenerCount('change')).toBe(0)
  })

  it('relays the beat times it is given in every beat, newest first, within the size cap', async () => {
    const SIG = `${'A'.repeat(86)}==`
    const peerId = await randomPeerId()
    const beats = fakeBeatSink()
    let relays: Record<string, number> = { 'node-b': NOW - 120, 'node-c': NOW - 40 }
    hb = new Heartbeat(
      { heartbeatIntervalMs: HB },
      {
        libp2p: fakeHeartbeatLibp2p(peerId),
        beats,
        relay: () => ({ h: relays, r: { 'node-b': SIG } }),
        replica: await memoryReplica('node-a'),
        log: testLogger(),
        self: () => ({ id: 'node-a', url: 'http://a:1' }),
        resources: fakeResources(),
      },
    )
    await hb.start()
    expect(decodeBeat(beats.sent.at(-1)!).h).toEqual(relays)
    expect(decodeBeat(beats.sent.at(-1)!).r).toEqual({ 'node-b': SIG })
    // On the wire, each is written as the beat's own t minus the relayed time: short.
    expect(new TextDecoder().decode(beats.sent.at(-1)!)).toContain(
      `"h":{"node-c":40,"node-b":120},"r":{"node-b":"${SIG}"}`,
    )
    // A thousand relays of long ids do not fit in MAX_BEAT_BYTES: the oldest are left out.
    relays = Object.fromEntries(
      Array.from({ length: 1000 }, (_, i) => [`node-${'x'.repeat(100)}-${i}`, NOW - i]),
    )
    await vi.advanceTimersByTimeAsync(1.1 * HB)
    const last = beats.sent.at(-1)!
    expect(last.length).toBeLessThanOrEqual(MAX_BEAT_BYTES)
    const relayed = Object.values(decodeBeat(last).h!)
    expect(relayed.length).toBeGreaterThan(400)
    expect(relayed.length).toBeLessThan(1000)
    expect(Math.min(...relayed)).toBe(NOW - (relayed.length - 1))
  })

  it('validates its Init', async () => {
    const replica: Replica = await memoryReplica('node-a')
    const components = {
      libp2p: fakeHeartbeatLibp2p(await randomPeerId()),
      beats: fakeBeatSink(),
      replica,
      log: testLogger(),
      self: () => ({ id: 'node-a', url: 'http://a:1' }),
      resources: fakeResources(),
    }
    expect(() => new Heartbeat({ heartbeatIntervalMs: -1 }, components)).toThrow(InitError)
    expect(() => new Heartbeat({ recordRefreshMs: 0 }, components)).toThrow(/recordRefreshMs/)
  })
})
