import { generateKeyPair } from '@libp2p/crypto/keys'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { afterEach, describe, expect, it } from 'vitest'
import { BEATS_PROTOCOL } from '../../src/model/wire.ts'
import { FrameChannel } from '../../src/p2p/frame-channel.ts'
import { createP2PNode, type RegistryLibp2p } from '../../src/p2p/libp2p-node.ts'
import { testLogger } from '../liveness/fixtures.ts'
import { waitFor } from '../support/wait.ts'

const MAX = 1024

async function node(): Promise<RegistryLibp2p> {
  return createP2PNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
}

describe('FrameChannel (libp2p on 127.0.0.1)', () => {
  const nodes: RegistryLibp2p[] = []
  const channels: FrameChannel[] = []
  afterEach(async () => {
    await Promise.all(channels.splice(0).map((c) => c.stop()))
    await Promise.all(nodes.splice(0).map((n) => n.stop()))
  })

  async function start(silentConnectionMs?: number) {
    const libp2p = await node()
    const channel = new FrameChannel(
      {
        protocol: BEATS_PROTOCOL,
        maxFrameBytes: MAX,
        ...(silentConnectionMs === undefined ? {} : { silentConnectionMs }),
      },
      { libp2p, log: testLogger() },
    )
    await channel.start()
    const frames: Array<[string, string]> = []
    channel.on('frame', (from, data) => frames.push([from, new TextDecoder().decode(data)]))
    nodes.push(libp2p)
    channels.push(channel)
    return { libp2p, channel, frames }
  }

  it('sends each frame to every connected peer, once, named by the sender peer id', async () => {
    const [a, b, c] = await Promise.all([start(), start(), start()])
    await a.libp2p.dial(b.libp2p.getMultiaddrs()[0]!)
    await a.libp2p.dial(c.libp2p.getMultiaddrs()[0]!)
    expect(a.channel.peers().sort()).toEqual([b.libp2p.peerId.toString(), c.libp2p.peerId.toString()].sort())
    // The first broadcast to a new peer opens its stream; frames flow from then on.
    let n = 0
    await waitFor('b and c hear a', () => {
      a.channel.broadcast(new TextEncoder().encode(`beat ${n++}`))
      return b.frames.length > 0 && c.frames.length > 0
    })
    expect(a.channel.broadcast(new TextEncoder().encode('last'))).toBe(2)
    await waitFor('b and c hear the last beat', () => [b, c].every((x) => x.frames.at(-1)?.[1] === 'last'))
    for (const x of [b, c]) expect(x.frames.filter(([, text]) => text === 'last')).toHaveLength(1)
    expect(new Set(b.frames.map(([from]) => from))).toEqual(new Set([a.libp2p.peerId.toString()]))
    // Not connected to each other: b and c hear nothing from one another.
    b.channel.broadcast(new TextEncoder().encode('from b'))
    expect(c.frames.some(([, text]) => text === 'from b')).toBe(false)
    expect(() => a.channel.broadcast(new Uint8Array(MAX + 1))).toThrow(/1025-byte beat/)
  })

  it('resets a stream carrying an oversized frame, and keeps hearing the peer on a new one', async () => {
    const [a, mallory] = [await start(), await node()]
    nodes.push(mallory)
    const oversized: string[] = []
    a.channel.on('oversized', (from) => oversized.push(from))
    const stream = await mallory.dialProtocol(a.libp2p.getMultiaddrs()[0]!, BEATS_PROTOCOL)
    await pipe([new Uint8Array(MAX + 1)], (source) => lp.encode(source), stream).catch(() => undefined)
    await waitFor('oversized reported', () => oversized.length === 1)
    expect(oversized).toEqual([mallory.peerId.toString()])
    expect(a.frames).toEqual([])
    const again = await mallory.dialProtocol(a.libp2p.getMultiaddrs()[0]!, BEATS_PROTOCOL)
    await pipe([new TextEncoder().encode('fine')], (source) => lp.encode(source), again)
    await waitFor('a hears the next frame', () => a.frames.length === 1)
    expect(a.frames).toEqual([[mallory.peerId.toString(), 'fine']])
  })

  it('resets the stream of a peer that stops reading, instead of queueing beats without bound', async () => {
    const libp2p = await node()
    const channel = new FrameChannel(
      { protocol: BEATS_PROTOCOL, maxFrameBytes: MAX, maxQueuedBytes: 8 * MAX },
      { libp2p, log: testLogger() },
    )
    await channel.start()
    nodes.push(libp2p)
    channels.push(channel)
    // A peer that accepts beat streams and never reads them.
    const stuck = await node()
    nodes.push(stuck)
    const accepted: unknown[] = []
    await stuck.handle(BEATS_PROTOCOL, ({ stream }) => {
      accepted.push(stream)
    })
    await libp2p.dial(stuck.getMultiaddrs()[0]!)
    // Yamux lets 256 KiB through before the sender must wait for the reader; then beats queue up to
    // 8 KiB, and the next broadcast resets the stream; a later one opens a new stream.
    const frame = new Uint8Array(MAX).fill(1)
    await waitFor('a stalled reset', async () => {
      for (let i = 0; i < 64; i++) channel.broadcast(frame)
      await new Promise((resolve) => setImmediate(resolve))
      return channel.stalledResets > 0
    })
    await waitFor('a second stream opened', () => {
      channel.broadcast(frame)
      return accepted.length >= 2
    })
    expect(channel.peers()).toEqual([stuck.peerId.toString()])
  })

  it('closes a connection that carries no beats for silentConnectionMs, and keeps those that do', async () => {
    const a = await start(600)
    const b = await start()
    const silent = await node() // a libp2p peer that never beats (say, a half-open connection)
    nodes.push(silent)
    await a.libp2p.dial(b.libp2p.getMultiaddrs()[0]!)
    await a.libp2p.dial(silent.getMultiaddrs()[0]!)
    const beating = setInterval(() => {
      a.channel.broadcast(new TextEncoder().encode('a'))
      b.channel.broadcast(new TextEncoder().encode('b'))
    }, 100)
    try {
      const start = Date.now()
      await waitFor('a drops the silent peer', () => !a.channel.peers().includes(silent.peerId.toString()), {
        timeoutMs: 5000,
      })
      expect(Date.now() - start).toBeGreaterThanOrEqual(500)
      expect(a.channel.peers()).toEqual([b.libp2p.peerId.toString()])
      // b keeps beating: its connection outlives more than two silence periods (15 beats, 1.5 s).
      const heard = a.frames.length
      await waitFor('15 more beats from b', () => a.frames.length >= heard + 15)
      expect(a.channel.peers()).toEqual([b.libp2p.peerId.toString()])
    } finally {
      clearInterval(beating)
    }
  })
})
