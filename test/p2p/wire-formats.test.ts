/**
 * Pins every wire format with an encoded example (src/model/wire.ts lists them). If one of these fails,
 * the bytes agents exchange have changed shape: agents of the previous release will read them during a
 * rolling upgrade. Either the old reader copes (a field it ignores or keeps), or the format needs a new
 * protocol id or topic; then update the example and docs/protocols.md.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { decodeBeat, encodeBeat } from '../../src/liveness/beat.ts'
import {
  decodeSwimFrame,
  encodeSwimFrame,
  MAX_SWIM_FRAME_BYTES,
  type SwimFrame,
} from '../../src/liveness/swim/codec.ts'
import {
  BEATS_PROTOCOL,
  CHANGES_TOPIC,
  LEAF_BITS,
  MAX_BEAT_BYTES,
  MAX_ENTRIES_PER_FRAME,
  MAX_GOSSIP_MESSAGE_BYTES,
  MAX_LEVELS_PER_ROUND,
  MAX_SYNC_FRAME_BYTES,
  REACH_TOPIC,
  SWIM_PROTOCOL,
  SYNC_PROTOCOL,
} from '../../src/model/wire.ts'
import {
  DATAGRAM_SEALED,
  DATAGRAM_SIGNED,
  DatagramChannel,
  MAX_DATAGRAM_BYTES,
} from '../../src/p2p/datagram-channel.ts'
import { decodeChangesMessage, encodeChangesMessages } from '../../src/p2p/gossip-codec.ts'
import { decodeFrame, encodeDigest, encodeFrame, type Frame } from '../../src/p2p/sync/messages.ts'
import { type Change, decodeChange, decodeEntry, encodeEntry } from '../../src/replica/change.ts'
import { nodeSigner } from '../../src/replica/node-signature.ts'
import { createLogger } from '../../src/support/logger.ts'

const text = new TextDecoder()
const bytes = (s: string) => new TextEncoder().encode(s)

const TS = 1796558400000 // 2026-12-06T12:00:00Z
const INSTANCE = {
  id: 'inst_1',
  url: 'http://127.0.0.1:8080',
  scheme: 'http',
  ip: '127.0.0.1',
  port: 8080,
  slug: 'user-svc',
  nodeUrl: 'http://127.0.0.1:11337',
  status: 'Healthy' as const,
  lastHeartbeat: '2026-12-06T12:00:00.000Z',
}
const STATUS_WRITE: Change = {
  kind: 'instance',
  id: 'inst_1',
  version: { ts: TS, c: 3, node: 'node-a' },
  value: INSTANCE,
  basedOn: { ts: TS - 1000, c: 0, node: 'node-b' },
}
const TOMBSTONE: Change = {
  kind: 'definition',
  id: 'def-1',
  version: { ts: TS + 1, c: 0, node: 'node-b' },
  value: null,
}

const CHANGE_JSON =
  '{"kind":"instance","id":"inst_1","version":{"ts":1796558400000,"c":3,"node":"node-a"},' +
  '"value":{"id":"inst_1","url":"http://127.0.0.1:8080","scheme":"http","ip":"127.0.0.1","port":8080,' +
  '"slug":"user-svc","nodeUrl":"http://127.0.0.1:11337","status":"Healthy","lastHeartbeat":"2026-12-06T12:00:00.000Z"},' +
  '"basedOn":{"ts":1796558399000,"c":0,"node":"node-b"}}'
const TOMBSTONE_JSON =
  '{"kind":"definition","id":"def-1","version":{"ts":1796558400001,"c":0,"node":"node-b"},"value":null}'
const PINNED_DATAGRAM_SIGNATURE =
  '263b96682ab8dcb2274eaaf417bc8d356e5f23a9be7e1adcaef990673960ac9c66728ba9fb2a1aa81b0e7b63b2b9442d648d1c6a631923d136c2e10c6ac4f908'
const DIGEST = encodeDigest(Buffer.alloc(32, 0xab))

describe('wire identifiers and limits', () => {
  it('are the ones agents of this release speak', () => {
    expect({
      CHANGES_TOPIC,
      REACH_TOPIC,
      BEATS_PROTOCOL,
      SWIM_PROTOCOL,
      SYNC_PROTOCOL,
      LEAF_BITS,
      MAX_SWIM_FRAME_BYTES,
      MAX_BEAT_BYTES,
      MAX_ENTRIES_PER_FRAME,
      MAX_GOSSIP_MESSAGE_BYTES,
      MAX_LEVELS_PER_ROUND,
      MAX_SYNC_FRAME_BYTES,
    }).toEqual({
      CHANGES_TOPIC: '/p2p-registry/changes/2',
      REACH_TOPIC: '/p2p-registry/hears-all/1',
      BEATS_PROTOCOL: '/p2p-registry/beats/2.0.0',
      SWIM_PROTOCOL: '/p2p-registry/swim/1.0.0',
      SYNC_PROTOCOL: '/p2p-registry/sync/1.0.0',
      LEAF_BITS: 12,
      MAX_SWIM_FRAME_BYTES: 16384,
      MAX_BEAT_BYTES: 65536,
      MAX_ENTRIES_PER_FRAME: 10000,
      MAX_GOSSIP_MESSAGE_BYTES: 1114112,
      MAX_LEVELS_PER_ROUND: 4,
      MAX_SYNC_FRAME_BYTES: 4194304,
    })
  })
})

describe(`gossip message on ${CHANGES_TOPIC}`, () => {
  const pinned = `{"changes":[${CHANGE_JSON},${TOMBSTONE_JSON}]}`

  it('encodes a batch as pinned, and reads the pinned bytes back', () => {
    const [message, ...more] = encodeChangesMessages([STATUS_WRITE, TOMBSTONE], MAX_GOSSIP_MESSAGE_BYTES)
    expect(more).toEqual([])
    expect(text.decode(message)).toBe(pinned)
    const limits = { maxMessageBytes: MAX_GOSSIP_MESSAGE_BYTES, maxDriftMs: 5000, nowMs: TS }
    expect(decodeChangesMessage(bytes(pinned), limits)).toEqual([STATUS_WRITE, TOMBSTONE])
  })
})

describe(`anti-entropy frames of ${SYNC_PROTOCOL}`, () => {
  const frames: Array<[Frame, string]> = [
    [{ type: 'hello', digest: DIGEST, entries: 2 }, `{"type":"hello","digest":"${DIGEST}","entries":2}`],
    [
      { type: 'get-digests', parentLevel: 0, parents: [0], level: 1 },
      '{"type":"get-digests","parentLevel":0,"parents":[0],"level":1}',
    ],
    [
      { type: 'digests', level: 1, digests: [DIGEST] },
      `{"type":"digests","level":1,"digests":["${DIGEST}"]}`,
    ],
    [{ type: 'get-entries', ranges: [[0, 4096]] }, '{"type":"get-entries","ranges":[[0,4096]]}'],
    [
      { type: 'entries', entries: [JSON.parse(CHANGE_JSON)], last: true },
      `{"type":"entries","entries":[${CHANGE_JSON}],"last":true}`,
    ],
    [{ type: 'done', digest: DIGEST }, `{"type":"done","digest":"${DIGEST}"}`],
    [{ type: 'error', reason: 'busy' }, '{"type":"error","reason":"busy"}'],
  ]

  it.each(frames)('%o is encoded as pinned and read back', (frame, pinned) => {
    expect(text.decode(encodeFrame(frame))).toBe(pinned)
    expect(decodeFrame(bytes(pinned))).toEqual(frame)
  })

  it('an entry decodes to the change it was made from', () => {
    expect(decodeChange(JSON.parse(CHANGE_JSON))).toEqual(STATUS_WRITE)
  })
})

describe(`beat on ${BEATS_PROTOCOL}`, () => {
  const beat = {
    n: 'node-a',
    t: TS,
    s: 7,
    d: '0123456789abcdef',
    h: { 'node-b': TS - 500, 'node-c': TS - 2000 },
  }
  const pinned =
    '{"n":"node-a","t":1796558400000,"s":7,"d":"0123456789abcdef","h":{"node-b":500,"node-c":2000}}'

  it('is encoded as pinned (relays as ms before the beat) and read back', () => {
    expect(text.decode(encodeBeat(beat))).toBe(pinned)
    expect(decodeBeat(bytes(pinned))).toEqual(beat)
  })

  // Added without a new id: readers of the previous release ignore `g` and `r`.
  const G = `${'g'.repeat(86)}==`
  const R = `${'r'.repeat(86)}==`
  const signedBeat = { ...beat, g: G, r: { 'node-b': R } }
  const signedPinned =
    `{"n":"node-a","t":1796558400000,"s":7,"d":"0123456789abcdef","g":"${G}",` +
    `"h":{"node-b":500,"node-c":2000},"r":{"node-b":"${R}"}}`

  it('carries the sender signature (g) and relayed nodes’ own signatures (r), as pinned', () => {
    expect(text.decode(encodeBeat(signedBeat))).toBe(signedPinned)
    expect(decodeBeat(bytes(signedPinned))).toEqual(signedBeat)
    expect(() => decodeBeat(bytes(signedPinned.replace(`"g":"${G}"`, '"g":"short"')))).toThrow(
      'beat.g must be a base64 Ed25519 signature',
    )
    expect(() => decodeBeat(bytes(signedPinned.replace(`"node-b":"${R}"`, '"node-b":1')))).toThrow(
      'beat.r values must be base64 Ed25519 signatures',
    )
  })
})

describe(`SWIM frame on ${SWIM_PROTOCOL}`, () => {
  const G = `${'g'.repeat(86)}==`
  const frame: SwimFrame = {
    t: 'ping-req',
    seq: 7,
    from: 'node-a',
    target: 'node-c',
    u: [
      { s: 'suspect', n: 'node-c', i: 1796558400000, f: 'node-b' },
      { s: 'alive', n: 'node-b', i: 1796558400123, g: G },
    ],
    d: '0123456789abcdef',
  }
  const pinned =
    '{"t":"ping-req","seq":7,"from":"node-a","target":"node-c","u":[{"s":"suspect","n":"node-c","i":1796558400000,"f":"node-b"},' +
    `{"s":"alive","n":"node-b","i":1796558400123,"g":"${G}"}],"d":"0123456789abcdef"}`

  it('is encoded as pinned and read back; unknown keys are ignored', () => {
    expect(text.decode(encodeSwimFrame(frame))).toBe(pinned)
    expect(decodeSwimFrame(bytes(pinned))).toEqual(frame)
    expect(decodeSwimFrame(bytes(pinned.replace('"seq":7', '"seq":7,"later":1')))).toEqual(frame)
  })

  it('names the first problem of a frame it cannot read', () => {
    expect(() => decodeSwimFrame(bytes(pinned.replace('"ping-req"', '"hello"')))).toThrow(
      't must be a message type',
    )
    expect(() => decodeSwimFrame(bytes(pinned.replace(`"g":"${G}"`, '"g":"short"')))).toThrow(
      'update.g must be a base64 Ed25519 signature',
    )
    expect(() => decodeSwimFrame(bytes(pinned.replace('"i":1796558400000', '"i":-1')))).toThrow(
      'update.i must be an incarnation number',
    )
    expect(() => decodeSwimFrame(new Uint8Array(MAX_SWIM_FRAME_BYTES + 1))).toThrow('exceeds')
  })
})

// A fixed key (Ed25519 signatures are deterministic) and a fixed clock: datagram bytes are pinned.
const DATAGRAM_KEY = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(7))
const SILENT = await createLogger('silent')

describe('SWIM datagram (UDP, on the libp2p TCP port number)', () => {
  const peerId = peerIdFromPrivateKey(DATAGRAM_KEY).toString()
  const at = 1796558400000
  const channel = async (clusterKey?: string) =>
    new DatagramChannel(
      {
        bind: () => [],
        maxFrameBytes: 16384,
        now: () => at,
        ...(clusterKey === undefined ? {} : { clusterKey }),
      },
      { signer: nodeSigner('node-a', peerId, DATAGRAM_KEY.raw), log: SILENT },
    )
  const frame = bytes('{"t":"ping","seq":1,"from":"node-a","d":"0123456789abcdef"}')

  it('is 0x53, the peer id, the time sent, the frame, then the signature, as pinned', async () => {
    const datagram = (await channel()).datagram(frame)
    const head = Buffer.concat([
      Buffer.of(0x53, peerId.length),
      Buffer.from(peerId),
      Buffer.from('000001a24b39aa00', 'hex'),
    ])
    expect(peerId).toBe('12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7')
    expect(datagram.subarray(0, head.length)).toEqual(head)
    expect(datagram.subarray(head.length, head.length + frame.length)).toEqual(Buffer.from(frame))
    expect(datagram.subarray(head.length + frame.length).toString('hex')).toBe(PINNED_DATAGRAM_SIGNATURE)
    expect({ DATAGRAM_SIGNED, DATAGRAM_SEALED, MAX_DATAGRAM_BYTES }).toEqual({
      DATAGRAM_SIGNED: 0x53,
      DATAGRAM_SEALED: 0x73,
      MAX_DATAGRAM_BYTES: 61440,
    })
  })

  it('is read back by a receiver, and sealed under a cluster key as 0x73, a nonce, the sealed datagram and its tag', async () => {
    const receiver = await channel()
    const frames: Uint8Array[] = []
    receiver.on('frame', (from, data) => from === peerId && frames.push(data))
    expect(receiver.receive((await channel()).datagram(frame), { host: '127.0.0.1', port: 1 })).toBe(
      'accepted',
    )
    expect(Buffer.from(frames[0]!)).toEqual(Buffer.from(frame))
    const sealed = (await channel('k')).datagram(frame)
    const plain = (await channel()).datagram(frame)
    expect(sealed[0]).toBe(0x73)
    expect(sealed.length).toBe(1 + 12 + plain.length + 16)
    expect((await channel('k')).receive(sealed, { host: '127.0.0.1', port: 1 })).toBe('accepted')
  })
})

describe('stored entry (LevelDB value; its bytes are what replica digests hash)', () => {
  it.each([
    [
      STATUS_WRITE,
      '{"b":[1796558399000,0,"node-b"],"d":{"id":"inst_1","ip":"127.0.0.1","lastHeartbeat":"2026-12-06T12:00:00.000Z",' +
        '"nodeUrl":"http://127.0.0.1:11337","port":8080,"scheme":"http","slug":"user-svc","status":"Healthy",' +
        '"url":"http://127.0.0.1:8080"},"v":[1796558400000,3,"node-a"]}',
    ],
    [TOMBSTONE, '{"d":null,"v":[1796558400001,0,"node-b"]}'],
  ])('%o is stored as pinned and read back', (change, pinned) => {
    expect(encodeEntry(change)).toBe(pinned)
    expect(decodeEntry(`${change.kind}/${change.id}`, pinned)).toEqual(change)
  })
})
