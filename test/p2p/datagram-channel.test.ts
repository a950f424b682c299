import { createSocket, type Socket } from 'node:dgram'
import { afterEach, describe, expect, it } from 'vitest'
import { DatagramChannel, datagramBinds } from '../../src/p2p/datagram-channel.ts'
import type { NodeSigner } from '../../src/replica/node-signature.ts'
import { createLogger } from '../../src/support/logger.ts'
import { nodeIdentity } from '../liveness/fixtures.ts'
import { waitFor } from '../support/wait.ts'

const log = await createLogger('silent')
const open: Array<DatagramChannel | Socket> = []
afterEach(() => {
  for (const thing of open.splice(0)) thing instanceof DatagramChannel ? thing.stop() : thing.close()
})

interface Started {
  channel: DatagramChannel
  signer: NodeSigner
  port: number
  frames: Array<{ from: string; text: string }>
  multiaddrs: string[]
}

/** A channel on 127.0.0.1 at a free port (found by binding UDP port 0 first), with what it heard. */
async function started(id: string, options: { clusterKey?: string; port?: number } = {}): Promise<Started> {
  const { signer } = await nodeIdentity(id)
  const port = options.port ?? (await freeUdpPort())
  const channel = new DatagramChannel(
    {
      bind: () => [{ host: '127.0.0.1', port }],
      maxFrameBytes: 16 * 1024,
      ...(options.clusterKey === undefined ? {} : { clusterKey: options.clusterKey }),
    },
    { signer, log },
  )
  open.push(channel)
  await channel.start()
  const frames: Started['frames'] = []
  channel.on('frame', (from, data) => frames.push({ from, text: Buffer.from(data).toString() }))
  return { channel, signer, port, frames, multiaddrs: [`/ip4/127.0.0.1/tcp/${port}/p2p/${signer.peerId}`] }
}

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const { port } = socket.address()
  socket.close()
  return port
}

/** What a channel sends to `to` for `text`: captured by a plain socket standing at `to`'s address. */
async function capture(from: Started, text: string): Promise<Buffer> {
  const socket = createSocket('udp4')
  open.push(socket)
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const got = new Promise<Buffer>((resolve) => socket.once('message', resolve))
  from.channel.send('12D3KooWAnyone', Buffer.from(text), [`/ip4/127.0.0.1/tcp/${socket.address().port}`])
  return got
}

const at = (s: Started) => ({ host: '127.0.0.1', port: s.port })

describe('DatagramChannel', () => {
  it('delivers a frame over UDP from the peer its signature proves, and answers at the address it came from', async () => {
    const a = await started('node-a')
    const b = await started('node-b')
    expect(a.channel.listening).toBe(true)
    // A wrong address first: until b has heard from a, a's record's addresses are all tried.
    expect(
      a.channel.send(b.signer.peerId, Buffer.from('ping'), ['/ip4/127.0.0.1/tcp/9', ...b.multiaddrs]),
    ).toBe(true)
    await waitFor('b to hear the ping', () => b.frames.length === 1)
    expect(b.frames[0]).toEqual({ from: a.signer.peerId, text: 'ping' })
    // b learned where a is: it answers with no record addresses at all.
    expect(b.channel.send(a.signer.peerId, Buffer.from('ack'), [])).toBe(true)
    await waitFor('a to hear the ack', () => a.frames.length === 1)
    expect(a.frames[0]).toEqual({ from: b.signer.peerId, text: 'ack' })
    // Not learned, no address: the caller is told to use a stream.
    expect(a.channel.send('12D3KooWSomeoneElse', Buffer.from('x'), [])).toBe(false)
  })

  it('drops a datagram altered on the way, one that claims another sender, garbage and a replay from the past', async () => {
    const a = await started('node-a')
    const b = await started('node-b')
    const datagram = await capture(a, 'ping')
    expect(b.channel.receive(Buffer.from(datagram), at(a))).toBe('accepted')

    const altered = Buffer.from(datagram)
    altered.writeUInt8(altered.readUInt8(altered.length - 70) ^ 1, altered.length - 70) // a byte of the frame
    expect(b.channel.receive(altered, at(a))).toBe('rejected-signature')

    // b's peer id in a's datagram: b's key did not sign it.
    const claimed = Buffer.from(datagram)
    Buffer.from(b.signer.peerId, 'latin1').copy(claimed, 2)
    expect(b.channel.receive(claimed, at(a))).toBe('rejected-signature')

    expect(b.channel.receive(Buffer.from('hello'), at(a))).toBe('rejected-malformed')
    expect(b.channel.receive(Buffer.alloc(200, 0x53), at(a))).toBe('rejected-malformed')
    const huge = Buffer.from(datagram)
    huge[1] = 255 // a peer id longer than the datagram
    expect(b.channel.receive(huge, at(a))).toBe('rejected-malformed')

    // Re-signed by a, but sent an hour ago: a recording replayed later.
    const old = Buffer.from(datagram.subarray(0, datagram.length - 64))
    old.writeBigUInt64BE(BigInt(Date.now() - 3_600_000), 2 + old[1]!)
    const replay = Buffer.concat([old, a.signer.signDatagram(old)])
    expect(b.channel.receive(replay, at(a))).toBe('rejected-stale')
    expect(b.frames.map((f) => f.text)).toEqual(['ping'])
  })

  it('seals datagrams with the cluster key: another key, or none, cannot read or inject them', async () => {
    const a = await started('node-a', { clusterKey: 'secret' })
    const b = await started('node-b', { clusterKey: 'secret' })
    const outsider = await started('outsider', { clusterKey: 'another' })
    const open = await started('open')
    const sealed = await capture(a, 'members only')
    expect(sealed.includes(Buffer.from('members only'))).toBe(false)
    expect(sealed.includes(Buffer.from(a.signer.peerId))).toBe(false)
    expect(b.channel.receive(sealed, at(a))).toBe('accepted')
    expect(outsider.channel.receive(sealed, at(a))).toBe('rejected-malformed')
    expect(open.channel.receive(sealed, at(a))).toBe('rejected-malformed')
    const unsealed = await capture(open, 'hello')
    expect(b.channel.receive(unsealed, at(open))).toBe('rejected-unsealed')
    expect(b.frames.map((f) => f.text)).toEqual(['members only'])
  })

  it('verifies at most its rate for one peer: a flood is dropped cheaply and memory stays bounded', async () => {
    const a = await started('node-a')
    const b = await started('node-b')
    const datagram = await capture(a, 'flood')
    const outcomes = new Map<string, number>()
    for (let i = 0; i < 2000; i++) {
      const outcome = b.channel.receive(datagram, at(a))
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    }
    expect(outcomes.get('accepted')).toBeLessThanOrEqual(450) // the burst, and what refilled meanwhile
    expect(outcomes.get('rejected-rate')).toBeGreaterThan(1500)
  })

  it('does not listen when its UDP port is taken, and the node stops declaring datagrams', async () => {
    const squatter = createSocket('udp4')
    open.push(squatter)
    await new Promise<void>((resolve) => squatter.bind(0, '127.0.0.1', resolve))
    const node = await started('node-a', { port: squatter.address().port })
    expect(node.channel.listening).toBe(false)
    const record = node.signer.sign(
      {
        id: 'node-a',
        url: 'http://127.0.0.1:1',
        lastHeartbeat: new Date().toISOString(),
        peerId: node.signer.peerId,
      },
      { ts: 1, c: 0, node: 'node-a' },
    )
    expect(record.signs).toEqual(['beat', 'status', 'alive'])
    expect(node.channel.send('12D3KooWAnyone', Buffer.from('x'), ['/ip4/127.0.0.1/tcp/1'])).toBe(false)
  })
})

describe('datagramBinds', () => {
  it('listens where libp2p listens, on the port it was given when configured with 0', () => {
    const actual = ['/ip4/127.0.0.1/tcp/40111/p2p/12D3KooWX', '/ip4/198.18.0.1/tcp/40111/p2p/12D3KooWX']
    expect(datagramBinds(['/ip4/0.0.0.0/tcp/0'], actual)).toEqual([{ host: '0.0.0.0', port: 40111 }])
    expect(datagramBinds(['/ip4/0.0.0.0/tcp/11338'], actual)).toEqual([{ host: '0.0.0.0', port: 11338 }])
    expect(datagramBinds(undefined, ['/ip4/127.0.0.1/tcp/40111'])).toEqual([
      { host: '127.0.0.1', port: 40111 },
    ])
    expect(datagramBinds(['/ip4/0.0.0.0/tcp/0'], [])).toEqual([])
    expect(datagramBinds(['/dns4/example/tcp/1'], actual)).toEqual([])
  })
})
