import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { AntiEntropy, type SyncLibp2p, type SyncReport } from '../../../src/p2p/sync/index.ts'
import { InitError } from '../../../src/support/init-error.ts'
import { openReplica } from '../../replica/fixtures.ts'
import { memoryLogger } from './fixtures.ts'

/** Just enough libp2p for the unit's lifecycle: dials hang until aborted. */
async function fakeLibp2p() {
  const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const dials: PeerId[] = []
  const libp2p = {
    peerId: self,
    handle: vi.fn(async () => undefined),
    unhandle: vi.fn(async () => undefined),
    getPeers: () => [other],
    addEventListener: vi.fn(),
    removeEventListener: vi.fn(),
    dialProtocol: vi.fn(
      (peer: PeerId, _protocol: string, options: { signal: AbortSignal }) =>
        new Promise((_resolve, reject) => {
          dials.push(peer)
          options.signal.addEventListener('abort', () => reject(options.signal.reason))
        }),
    ),
  }
  return { libp2p, fake: libp2p as unknown as SyncLibp2p, other, dials }
}

describe('anti-entropy lifecycle', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('starts once, syncs on a jittered period, times sessions out, and leaves no timer behind', async () => {
    const { libp2p, fake, other, dials } = await fakeLibp2p()
    const replica = await openReplica('node-a')
    const sync = new AntiEntropy(
      { intervalMs: 1_000, timeoutMs: 500 },
      {
        libp2p: fake,
        replica,
        log: memoryLogger().log,
      },
    )
    const reports: SyncReport[] = []
    sync.on('peer:synced', (r) => reports.push(r))

    await sync.start()
    await sync.start()
    expect(libp2p.handle).toHaveBeenCalledTimes(1)
    expect(libp2p.handle.mock.calls[0]).toMatchObject([
      '/p2p-registry/sync/1.0.0',
      expect.any(Function),
      { maxInboundStreams: 2, runOnLimitedConnection: false },
    ])
    expect(libp2p.addEventListener).toHaveBeenCalledWith('connection:open', expect.any(Function))

    await vi.advanceTimersByTimeAsync(799)
    expect(dials).toEqual([])
    await vi.advanceTimersByTimeAsync(401) // the first period ends within ±20% of 1 s
    expect(dials).toEqual([other])
    await vi.advanceTimersByTimeAsync(500)
    expect(reports).toMatchObject([{ outcome: 'failed', reason: 'timeout', peer: other.toString() }])
    expect(sync.stats.failures.timeout).toBe(1)

    // A session is running when stop() comes: it is cancelled, and nothing is left scheduled.
    for (let waited = 0; dials.length < 2 && waited <= 1_200; waited += 50)
      await vi.advanceTimersByTimeAsync(50)
    expect(dials).toHaveLength(2)
    await sync.stop()
    await sync.stop()
    expect(reports[1]).toMatchObject({ outcome: 'failed', reason: 'stopped' })
    expect(libp2p.unhandle).toHaveBeenCalledTimes(1)
    expect(libp2p.removeEventListener).toHaveBeenCalledWith('connection:open', expect.any(Function))
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(dials).toHaveLength(2)
  })

  it('can be restarted after stop', async () => {
    const { libp2p, fake } = await fakeLibp2p()
    const sync = new AntiEntropy(
      { intervalMs: 1_000 },
      {
        libp2p: fake,
        replica: await openReplica('node-a'),
        log: memoryLogger().log,
      },
    )
    await sync.start()
    await sync.stop()
    await sync.start()
    expect(sync.isStarted).toBe(true)
    expect(libp2p.handle).toHaveBeenCalledTimes(2)
    expect(vi.getTimerCount()).toBe(1)
    await sync.stop()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('reports a sync asked of a stopped unit as failed', async () => {
    const { fake, other } = await fakeLibp2p()
    const sync = new AntiEntropy(
      {},
      {
        libp2p: fake,
        replica: await openReplica('node-a'),
        log: memoryLogger().log,
      },
    )
    expect(await sync.syncWith(other)).toMatchObject({ outcome: 'failed', reason: 'stopped' })
  })

  it.each([
    [{ intervalMs: -1 }, 'intervalMs'],
    [{ timeoutMs: 0 }, 'timeoutMs'],
    [{ timeoutMs: 1.5 }, 'timeoutMs'],
    [{ maxFrameBytes: 1024 }, 'maxFrameBytes'],
  ])('rejects %o naming the option', async (init, option) => {
    const { fake } = await fakeLibp2p()
    const build = () =>
      new AntiEntropy(init, { libp2p: fake, replica: undefined as never, log: memoryLogger().log })
    expect(build).toThrow(InitError)
    expect(build).toThrow(option)
  })
})
