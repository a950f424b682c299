import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, isIPv6, type Server, type Socket } from 'node:net'
import dnsPacket, { type Answer, type Packet, type Question } from 'dns-packet'
import type { Logger } from '../support/logger.ts'
import type { Startable } from '../support/startable.ts'
import type { DnsAnswers, Resolution } from './answers.ts'

export interface DnsServerInit {
  host: string
  /** 0: any free port (tests); `address()` tells which. */
  port: number
  /** A TCP client that sends no complete query for this long is closed, ms. @default 10000 */
  tcpIdleMs?: number
  /** TCP connections open at once; more are closed as they arrive. @default 256 */
  maxTcpConnections?: number
}

export interface DnsServerComponents {
  answers: DnsAnswers
  log: Logger
  /** Called once per answered query (metrics). */
  observe?: (query: { type: string; rcode: string; transport: Transport; seconds: number }) => void
  /** Called once per packet dropped as malformed (metrics). */
  malformed?: (transport: Transport) => void
}

export type Transport = 'udp' | 'tcp'

/** What a UDP answer may take without EDNS0 (RFC 1035), and the most we offer with it. */
const PLAIN_UDP_BYTES = 512
const MAX_UDP_BYTES = 4096
const DEFAULT_TCP_IDLE_MS = 10_000
const DEFAULT_MAX_TCP_CONNECTIONS = 256
/** Answers written to a TCP client and not yet read by it, at most. */
const MAX_TCP_UNREAD_BYTES = 256 * 1024

const HEADER_BYTES = 12
const RESPONSE = 1 << 15
const FLAG_AA = 1 << 10
const FLAG_TC = 1 << 9
const FLAG_RD = 1 << 8
const RCODES = { NOERROR: 0, FORMERR: 1, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const

/**
 * The agent's DNS server (README, DNS): UDP and TCP on one address, answering from the replica through
 * `DnsAnswers`, authoritative for its domain only (REFUSED elsewhere: never an open resolver).
 *
 * Every query is answered synchronously from memory, so nothing queues here: UDP load is bounded by the
 * socket's kernel buffer, TCP by `maxTcpConnections` times one frame (64 KiB) each. A packet that does
 * not decode is dropped and counted. Answers that do not fit the client's UDP size (512 bytes, or its
 * EDNS0 size up to 4,096) are cut to whole records with TC set, and sent whole over TCP.
 */
export class DnsServer implements Startable {
  readonly #init: Required<DnsServerInit>
  readonly #components: DnsServerComponents
  /** Records encoded once per resolution (resolutions are cached until the registry changes). */
  readonly #encoded = new WeakMap<Resolution, EncodedResolution>()
  #udp: UdpSocket | undefined
  #tcp: Server | undefined
  readonly #connections = new Set<Socket>()

  constructor(init: DnsServerInit, components: DnsServerComponents) {
    this.#init = {
      tcpIdleMs: DEFAULT_TCP_IDLE_MS,
      maxTcpConnections: DEFAULT_MAX_TCP_CONNECTIONS,
      ...init,
    }
    this.#components = components
  }

  /** The bound address (after `start`). */
  address(): { host: string; port: number } {
    const address = this.#udp?.address()
    if (address === undefined) throw new Error('the DNS server is not started')
    return { host: address.address, port: address.port }
  }

  get isStarted(): boolean {
    return this.#udp !== undefined
  }

  async start(): Promise<void> {
    if (this.#udp !== undefined) return
    // Port 0: UDP takes any free port and TCP the same number, which another socket may hold: then
    // both are tried again on another port.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#bind()
        break
      } catch (err) {
        if (this.#init.port !== 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 10)
          throw err
      }
    }
    this.#components.log.info({ dns: `${this.#init.host}:${this.address().port}` }, 'DNS server listening')
  }

  async #bind(): Promise<void> {
    const { host } = this.#init
    const udp = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' })
    udp.on('message', (message, remote) => this.#onUdp(udp, message, remote.port, remote.address))
    udp.on('error', (err) => this.#components.log.warn({ err }, 'DNS UDP socket error'))
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject)
      udp.bind(this.#init.port, host, () => {
        udp.off('error', reject)
        resolve()
      })
    })
    const tcp = createServer((socket) => this.#onTcp(socket))
    tcp.maxConnections = this.#init.maxTcpConnections
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject)
        tcp.listen(udp.address().port, host, () => {
          tcp.off('error', reject)
          resolve()
        })
      })
    } catch (err) {
      await new Promise<void>((resolve) => udp.close(() => resolve()))
      throw err
    }
    this.#udp = udp
    this.#tcp = tcp
  }

  async stop(): Promise<void> {
    const udp = this.#udp
    const tcp = this.#tcp
    this.#udp = undefined
    this.#tcp = undefined
    for (const socket of this.#connections) socket.destroy()
    if (tcp) await new Promise((resolve) => tcp.close(resolve))
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()))
  }

  #onUdp(udp: UdpSocket, message: Buffer, port: number, address: string): void {
    const response = this.#answer(message, 'udp')
    if (response !== undefined) udp.send(response, port, address)
  }

  #onTcp(socket: Socket): void {
    this.#connections.add(socket)
    socket.setNoDelay(true)
    socket.setTimeout(this.#init.tcpIdleMs, () => socket.destroy())
    socket.on('error', () => socket.destroy())
    socket.on('close', () => this.#connections.delete(socket))
    // Frames are a 2-byte length and the message (RFC 1035 4.2.2); at most one frame is ever held.
    let pending = Buffer.alloc(0)
    socket.on('data', (chunk) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0)
        if (pending.length < 2 + length) break
        const message = pending.subarray(2, 2 + length)
        pending = pending.subarray(2 + length)
        const response = this.#answer(message, 'tcp')
        if (response === undefined) {
          // A client that sends garbage over TCP is not worth the connection.
          socket.destroy()
          return
        }
        const frame = Buffer.allocUnsafe(2 + response.length)
        frame.writeUInt16BE(response.length, 0)
        response.copy(frame, 2)
        socket.write(frame)
        // A client that asks without reading the answers would make us hold them all.
        if (socket.writableLength > MAX_TCP_UNREAD_BYTES) {
          socket.destroy()
          return
        }
      }
    })
  }

  /** The response to one message, or undefined when it is dropped (malformed, or itself a response). */
  #answer(message: Buffer, transport: Transport): Buffer | undefined {
    const started = performance.now()
    let query: Packet
    try {
      query = dnsPacket.decode(message)
    } catch {
      this.#components.malformed?.(transport)
      return undefined
    }
    if (query.type !== 'query' || query.id === undefined) {
      this.#components.malformed?.(transport)
      return undefined
    }
    const question = query.questions?.[0]
    const opt = query.additionals?.find((record) => record.type === 'OPT') as
      | { udpPayloadSize?: number }
      | undefined
    const limit =
      transport === 'tcp'
        ? 65_535
        : Math.min(MAX_UDP_BYTES, Math.max(PLAIN_UDP_BYTES, opt?.udpPayloadSize ?? PLAIN_UDP_BYTES))
    let rcode: keyof typeof RCODES
    let response: Buffer
    if (query.questions?.length !== 1 || question === undefined) {
      rcode = 'FORMERR'
      response = this.#bare(query, rcode, opt !== undefined, limit)
    } else if (
      opcodeOf(query) !== 0 ||
      (question.class !== undefined && question.class !== 'IN' && question.class !== 'ANY')
    ) {
      rcode = 'NOTIMP'
      response = this.#bare(query, rcode, opt !== undefined, limit)
    } else {
      const resolution = this.#components.answers.resolve(question.name, question.type)
      rcode = resolution.rcode
      response = this.#assemble(query, question, resolution, opt !== undefined, limit)
    }
    this.#components.observe?.({
      type: question?.type ?? 'none',
      rcode,
      transport,
      seconds: (performance.now() - started) / 1000,
    })
    return response
  }

  /**
   * The response to a resolved question within `limit` bytes, from records encoded once per resolution:
   * whole; else without additionals (no TC: RFC 2181 9); else the answers that fit, with TC so the
   * client asks again over TCP. (dns-packet does not compress names, so encoded records stand alone.)
   */
  #assemble(query: Packet, question: Question, resolution: Resolution, edns: boolean, limit: number): Buffer {
    const encoded = this.#encodedOf(resolution, question)
    const opt = edns ? optRecord(Math.min(limit, MAX_UDP_BYTES)) : undefined
    const answers = resolution.shuffle ? shuffled(encoded.answers) : encoded.answers
    const fixed = HEADER_BYTES + encoded.question.length + (opt?.length ?? 0)
    const answerBytes = total(answers)
    let authorities = encoded.authorities
    let additionals = encoded.additionals
    let truncated = false
    let count = answers.length
    if (fixed + answerBytes + total(authorities) + total(additionals) > limit) {
      additionals = []
      if (fixed + answerBytes + total(authorities) > limit) {
        authorities = []
        truncated = true
        let size = fixed
        count = 0
        while (count < answers.length && size + answers[count]!.length <= limit)
          size += answers[count++]!.length
      }
    }
    const parts = [answers.length === count ? answers : answers.slice(0, count), authorities, additionals]
    const header = Buffer.alloc(HEADER_BYTES)
    header.writeUInt16BE(query.id!, 0)
    header.writeUInt16BE(
      RESPONSE |
        FLAG_AA |
        ((query.flags ?? 0) & FLAG_RD) |
        (truncated ? FLAG_TC : 0) |
        RCODES[resolution.rcode],
      2,
    )
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(count, 6)
    header.writeUInt16BE(authorities.length, 8)
    header.writeUInt16BE(additionals.length + (opt === undefined ? 0 : 1), 10)
    return Buffer.concat([header, encoded.question, ...parts.flat(), ...(opt === undefined ? [] : [opt])])
  }

  #encodedOf(resolution: Resolution, question: Question): EncodedResolution {
    let encoded = this.#encoded.get(resolution)
    if (encoded === undefined) {
      encoded = {
        // The resolution is cached per name as asked (case and all), so its question is that name.
        question: dnsPacket
          .encode({ type: 'query', questions: [{ ...question, class: 'IN' }] })
          .subarray(HEADER_BYTES),
        answers: resolution.answers.map(recordBytes),
        authorities: resolution.authorities.map(recordBytes),
        additionals: resolution.additionals.map(recordBytes),
      }
      this.#encoded.set(resolution, encoded)
    }
    return encoded
  }

  /** A response without records (FORMERR, NOTIMP): the query's questions, and our OPT if it had one. */
  #bare(query: Packet, rcode: keyof typeof RCODES, edns: boolean, limit: number): Buffer {
    const bytes = dnsPacket.encode({
      id: query.id!,
      type: 'response',
      flags: FLAG_AA | ((query.flags ?? 0) & FLAG_RD) | RCODES[rcode],
      questions: query.questions ?? [],
    })
    if (!edns) return bytes
    bytes.writeUInt16BE(1, 10) // ARCOUNT: the OPT record appended
    return Buffer.concat([bytes, optRecord(Math.min(limit, MAX_UDP_BYTES))])
  }
}

interface EncodedResolution {
  question: Buffer
  answers: Buffer[]
  authorities: Buffer[]
  additionals: Buffer[]
}

/** A record's wire form: a packet holding only it, less the header. */
function recordBytes(record: Answer): Buffer {
  return dnsPacket.encode({ type: 'response', answers: [record] }).subarray(HEADER_BYTES)
}

const optRecords = new Map<number, Buffer>()

/** Our EDNS0 OPT record, offering `size` bytes over UDP. */
function optRecord(size: number): Buffer {
  let bytes = optRecords.get(size)
  if (bytes === undefined) {
    bytes = recordBytes({
      type: 'OPT',
      name: '.',
      udpPayloadSize: size,
      extendedRcode: 0,
      ednsVersion: 0,
      flags: 0,
      flag_do: false,
      options: [],
    })
    if (optRecords.size < 64) optRecords.set(size, bytes)
  }
  return bytes
}

function total(buffers: readonly Buffer[]): number {
  let sum = 0
  for (const b of buffers) sum += b.length
  return sum
}

function opcodeOf(packet: Packet): number {
  return ((packet.flags ?? 0) >> 11) & 0xf
}

/** A copy in random order (Fisher-Yates): each query spreads its clients over the instances. */
function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[copy[i], copy[j]] = [copy[j]!, copy[i]!]
  }
  return copy
}
