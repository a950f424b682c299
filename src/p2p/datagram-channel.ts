import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { EventEmitter } from 'node:events'
import { isIP } from 'node:net'
import { checkDatagramSignature, type NodeSigner } from '../replica/node-signature.ts'
import { emitSafely } from '../support/emit-safely.ts'
import type { Logger } from '../support/logger.ts'
import type { Startable } from '../support/startable.ts'
import { TokenBuckets } from '../support/token-buckets.ts'

/**
 * A datagram (docs/protocols.md, SWIM datagrams):
 *   0x53 | peer id length L | peer id (base58, L bytes) | sent at (u64 ms, big-endian) | frame | signature (64)
 * The signature is the sender's node key's (Ed25519) over a domain tag and everything before it. With a
 * cluster key the whole datagram is sealed (AES-256-GCM):
 *   0x73 | nonce (12) | ciphertext | tag (16)
 */
export const DATAGRAM_SIGNED = 0x53
export const DATAGRAM_SEALED = 0x73
const SIGNATURE_BYTES = 64
const NONCE_BYTES = 12
const TAG_BYTES = 16
const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{1,64}$/

/** Largest datagram sent or read: what one UDP datagram holds, below IPv4's 65,507. */
export const MAX_DATAGRAM_BYTES = 60 * 1024

export type DatagramOutcome =
  | 'accepted'
  | 'rejected-malformed'
  | 'rejected-unsealed'
  | 'rejected-stale'
  | 'rejected-rate'
  | 'rejected-signature'

export interface DatagramChannelInit {
  /** Where to listen: the libp2p TCP listeners' hosts and ports, known once libp2p listens. */
  bind: () => Array<{ host: string; port: number }>
  /** Largest frame inside a datagram, bytes. */
  maxFrameBytes: number
  /** With it, datagrams are sealed with a key derived from it, and unsealed ones are dropped. */
  clusterKey?: string
  /**
   * A datagram sent longer ago than this (by its sender's clock), or this far in the future, is
   * dropped: a recorded one cannot be replayed later. Clocks may differ by `OB_MAX_DRIFT_MS`.
   * @default 30000
   */
  maxAgeMs?: number
  /** Datagrams one peer may have verified per second on average (a verify costs about 50 µs). @default 200 */
  perPeerRate?: number
  /** The clock datagrams are stamped and judged by. @default Date.now */
  now?: () => number
}

export interface DatagramChannelComponents {
  signer: Pick<NodeSigner, 'peerId' | 'signDatagram' | 'withdraw'>
  log: Logger
}

export interface DatagramChannelEvents {
  /** A frame from `from`, proven by its datagram's signature. */
  frame: [from: string, data: Uint8Array]
}

interface Address {
  host: string
  port: number
}

/** Addresses known per peer at most; past it the map starts over. */
const MAX_LEARNED = 4096

/**
 * SWIM frames as signed UDP datagrams, on the UDP port whose number is the libp2p TCP listener's.
 * A datagram needs no connection: a probe to any member costs one packet each way whatever the
 * cluster's size, where a libp2p stream needs a connection (a TCP and Noise handshake, kept open) to
 * every member. The sender is proven by its signature (its peer id carries its public key), not by a
 * connection; a cluster key seals datagrams as it protects connections.
 *
 * A peer's address: the one its datagrams come from once we have heard one, and until then the
 * addresses of its record's multiaddrs (every one that fits, at most 3).
 *
 * If a port cannot be bound (another program holds that UDP port), the channel does not listen, and
 * the node withdraws `datagram` from what its record declares: peers then send to it on the libp2p
 * stream protocol, as they do to nodes of the previous release.
 */
export class DatagramChannel extends EventEmitter<DatagramChannelEvents> implements Startable {
  readonly counts: Record<DatagramOutcome, number> = {
    accepted: 0,
    'rejected-malformed': 0,
    'rejected-unsealed': 0,
    'rejected-stale': 0,
    'rejected-rate': 0,
    'rejected-signature': 0,
  }
  /** Datagrams sent and their UDP payload bytes (benchmarks add them to the TCP bytes they read). */
  readonly sent = { datagrams: 0, bytes: 0 }
  readonly #init: DatagramChannelInit
  readonly #signer: DatagramChannelComponents['signer']
  readonly #log: Logger
  readonly #sealKey: Buffer | undefined
  readonly #maxAgeMs: number
  readonly #now: () => number
  readonly #buckets: TokenBuckets
  /** Every peer together, so that peer ids made up by the thousand cannot buy unlimited verifies. */
  readonly #allPeers: TokenBuckets
  readonly #learned = new Map<string, Address>()
  #sockets: Array<{ socket: Socket; family: 4 | 6; loopback: boolean }> = []
  #started = false

  constructor(init: DatagramChannelInit, components: DatagramChannelComponents) {
    super()
    this.#init = init
    this.#signer = components.signer
    this.#log = components.log
    this.#sealKey =
      init.clusterKey === undefined
        ? undefined
        : createHash('sha256').update(`p2p-registry:swim-datagram:${init.clusterKey}`).digest()
    this.#maxAgeMs = init.maxAgeMs ?? 30_000
    this.#now = init.now ?? Date.now
    const rate = init.perPeerRate ?? 200
    this.#buckets = new TokenBuckets({ ratePerSecond: rate, burst: rate * 2 })
    this.#allPeers = new TokenBuckets({ ratePerSecond: rate * 20, burst: rate * 40 })
  }

  get isStarted(): boolean {
    return this.#started
  }

  /** Whether it listens (and so whether this node's record declares `datagram`). */
  get listening(): boolean {
    return this.#sockets.length > 0
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#started = true
    const binds = this.#init.bind()
    try {
      for (const { host, port } of binds) this.#sockets.push(await this.#bind(host, port))
    } catch (err) {
      this.#closeSockets()
      this.#signer.withdraw('datagram')
      this.#log.warn(
        { err, binds },
        'cannot listen for SWIM datagrams on the libp2p port numbers (UDP); peers will use streams to reach this node',
      )
      return
    }
    if (this.#sockets.length === 0) this.#signer.withdraw('datagram')
  }

  stop(): void {
    if (!this.#started) return
    this.#started = false
    this.#closeSockets()
    this.#learned.clear()
  }

  /** The datagram that carries `frame` from this node (signed, and sealed with a cluster key). */
  datagram(frame: Uint8Array): Buffer {
    return this.#seal(this.#signed(frame))
  }

  /**
   * Sends a frame to a peer at its learned address, or else at the addresses of its record's
   * `multiaddrs`. False if no address fits (the caller may use a stream instead).
   */
  send(peerId: string, frame: Uint8Array, multiaddrs: unknown): boolean {
    if (!this.listening || frame.length > this.#init.maxFrameBytes) return false
    const learned = this.#learned.get(peerId)
    const targets = learned === undefined ? this.#candidates(multiaddrs) : [learned]
    if (targets.length === 0) return false
    const datagram = this.datagram(frame)
    for (const target of targets) {
      const socket = this.#socketFor(target.host)
      if (socket === undefined) continue
      this.sent.datagrams++
      this.sent.bytes += datagram.length
      socket.send(datagram, target.port, target.host, (err) => {
        if (err) this.#log.debug({ err, peerId, target }, 'SWIM datagram not sent')
      })
    }
    return true
  }

  /** Forgets where a peer's datagrams came from: the next send tries its record's addresses again. */
  reset(peerId: string): void {
    this.#learned.delete(peerId)
  }

  /** Judges one datagram from `from`. Public for tests. */
  receive(message: Buffer, from: Address): DatagramOutcome {
    const plain = this.#unseal(message)
    if (plain === 'unsealed') return this.#count('rejected-unsealed')
    if (plain === undefined || plain.length < 2 + 8 + SIGNATURE_BYTES)
      return this.#count('rejected-malformed')
    if (plain[0] !== DATAGRAM_SIGNED) return this.#count('rejected-malformed')
    const idLength = plain[1]!
    const frameAt = 2 + idLength + 8
    const signatureAt = plain.length - SIGNATURE_BYTES
    if (frameAt > signatureAt) return this.#count('rejected-malformed')
    const peerId = plain.toString('latin1', 2, 2 + idLength)
    if (!PEER_ID.test(peerId)) return this.#count('rejected-malformed')
    const sentAt = Number(plain.readBigUInt64BE(2 + idLength))
    if (Math.abs(this.#now() - sentAt) > this.#maxAgeMs) return this.#count('rejected-stale')
    if (!this.#buckets.take(peerId, 1) || !this.#allPeers.take('', 1)) return this.#count('rejected-rate')
    const signed = plain.subarray(0, signatureAt)
    if (!checkDatagramSignature(peerId, signed, plain.subarray(signatureAt)))
      return this.#count('rejected-signature')
    if (this.#learned.size >= MAX_LEARNED && !this.#learned.has(peerId)) this.#learned.clear()
    this.#learned.set(peerId, { host: from.host, port: from.port })
    emitSafely(this, this.#log, 'datagram channel', 'frame', [peerId, plain.subarray(frameAt, signatureAt)])
    return this.#count('accepted')
  }

  #count(outcome: DatagramOutcome): DatagramOutcome {
    this.counts[outcome]++
    if (outcome !== 'accepted') this.#log.debug({ outcome }, 'SWIM datagram dropped')
    return outcome
  }

  #signed(frame: Uint8Array): Buffer {
    const id = Buffer.from(this.#signer.peerId, 'latin1')
    const head = Buffer.allocUnsafe(2 + id.length + 8)
    head[0] = DATAGRAM_SIGNED
    head[1] = id.length
    id.copy(head, 2)
    head.writeBigUInt64BE(BigInt(this.#now()), 2 + id.length)
    const body = Buffer.concat([head, frame])
    return Buffer.concat([body, this.#signer.signDatagram(body)])
  }

  #seal(plain: Buffer): Buffer {
    if (this.#sealKey === undefined) return plain
    const nonce = randomBytes(NONCE_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.#sealKey, nonce)
    return Buffer.concat([
      Buffer.of(DATAGRAM_SEALED),
      nonce,
      cipher.update(plain),
      cipher.final(),
      cipher.getAuthTag(),
    ])
  }

  /** The signed datagram inside, `unsealed` if it should have been sealed, undefined if it does not open. */
  #unseal(message: Buffer): Buffer | 'unsealed' | undefined {
    if (this.#sealKey === undefined) return message[0] === DATAGRAM_SEALED ? undefined : message
    if (message[0] !== DATAGRAM_SEALED) return 'unsealed'
    if (message.length < 1 + NONCE_BYTES + TAG_BYTES) return undefined
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#sealKey, message.subarray(1, 1 + NONCE_BYTES))
      decipher.setAuthTag(message.subarray(message.length - TAG_BYTES))
      return Buffer.concat([
        decipher.update(message.subarray(1 + NONCE_BYTES, message.length - TAG_BYTES)),
        decipher.final(),
      ])
    } catch {
      return undefined // another key, or altered on the way
    }
  }

  /** A record's multiaddrs as UDP targets: same port numbers, the families we listen on, at most 3. */
  #candidates(multiaddrs: unknown): Address[] {
    if (!Array.isArray(multiaddrs)) return []
    const onlyLoopback = this.#sockets.every((s) => s.loopback)
    const all: Array<Address & { loopback: boolean }> = []
    for (const addr of multiaddrs) {
      const tcp = typeof addr === 'string' ? tcpAddress(addr) : undefined
      if (tcp === undefined) continue
      const { family, host, port } = tcp
      if (port < 1 || port > 65535 || isIP(host) !== family || !this.#socketFor(host)) continue
      all.push({ host, port, loopback: isLoopback(host) })
    }
    // Loopback addresses reach another node only when every node of the cluster is on this host.
    const fit = all.filter((a) => a.loopback === onlyLoopback)
    return (fit.length > 0 ? fit : all).slice(0, 3).map(({ host, port }) => ({ host, port }))
  }

  #socketFor(host: string): Socket | undefined {
    const family = isIP(host)
    const loopback = isLoopback(host)
    return this.#sockets.find((s) => s.family === family && (!s.loopback || loopback))?.socket
  }

  #bind(host: string, port: number): Promise<{ socket: Socket; family: 4 | 6; loopback: boolean }> {
    const family = isIP(host) === 6 ? 6 : 4
    const socket = createSocket({ type: family === 6 ? 'udp6' : 'udp4', ipv6Only: family === 6 })
    return new Promise((resolve, reject) => {
      socket.once('error', reject)
      socket.bind({ address: host, port, exclusive: true }, () => {
        socket.off('error', reject)
        socket.on('error', (err) => this.#log.debug({ err }, 'SWIM datagram socket error'))
        socket.on('message', (message: Buffer, rinfo: RemoteInfo) => {
          if (message.length > MAX_DATAGRAM_BYTES) return void this.#count('rejected-malformed')
          this.receive(message, { host: rinfo.address, port: rinfo.port })
        })
        resolve({ socket, family, loopback: isLoopback(host) })
      })
    })
  }

  #closeSockets(): void {
    for (const { socket } of this.#sockets) socket.close()
    this.#sockets = []
  }
}

/** The IP family, host and TCP port a multiaddr starts with (`/ip4/1.2.3.4/tcp/11338/...`). */
function tcpAddress(addr: string): { family: number; host: string; port: number } | undefined {
  const match = /^\/ip([46])\/([^/]+)\/tcp\/(\d+)/.exec(addr)
  return match === null ? undefined : { family: Number(match[1]), host: match[2]!, port: Number(match[3]) }
}

function isLoopback(host: string): boolean {
  return host.startsWith('127.') || host === '::1'
}

/**
 * Where to listen for datagrams: each configured libp2p listen address (`/ip4/0.0.0.0/tcp/11338`), on
 * the port libp2p actually listens on when it was 0; without configured ones, libp2p's addresses.
 */
export function datagramBinds(
  listen: readonly string[] | undefined,
  actual: readonly string[],
): Array<{ host: string; port: number }> {
  const listening = actual.map(tcpAddress).filter((a) => a !== undefined)
  const binds = new Map<string, { host: string; port: number }>()
  for (const wanted of (listen ?? actual).map(tcpAddress)) {
    if (wanted === undefined) continue
    const port = wanted.port !== 0 ? wanted.port : listening.find((a) => a.family === wanted.family)?.port
    if (port === undefined || port === 0) continue
    binds.set(`${wanted.host}:${port}`, { host: wanted.host, port })
  }
  return [...binds.values()]
}
