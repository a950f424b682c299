import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { pushable } from 'it-pushable'
import { type Logger, pino } from 'pino'
import type { Uint8ArrayList } from 'uint8arraylist'
import { SYNC_PROTOCOL } from '../../../src/model/wire.ts'
import { createP2PNode, type RegistryLibp2p } from '../../../src/p2p/libp2p-node.ts'
import { AntiEntropy, type AntiEntropyInit, type SyncReport } from '../../../src/p2p/sync/index.ts'
import type { Change } from '../../../src/replica/change.ts'
import type { Replica } from '../../../src/replica/replica.ts'
import { definition, instance, NOW, openReplica } from '../../replica/fixtures.ts'

export type LogLine = Record<string, unknown> & { msg: string; level: number }

/** A pino logger that keeps its lines in memory, for assertions on what was logged. */
export function memoryLogger(level = 'debug'): { log: Logger; lines: LogLine[]; raw: string[] } {
  const lines: LogLine[] = []
  const raw: string[] = []
  const log = pino(
    { level },
    {
      write: (line: string) => {
        raw.push(line)
        lines.push(JSON.parse(line) as LogLine)
      },
    },
  )
  return { log, lines, raw }
}

export async function startNode(): Promise<RegistryLibp2p> {
  return createP2PNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
}

export interface TestPeer {
  node: RegistryLibp2p
  replica: Replica
  sync: AntiEntropy
  lines: LogLine[]
  /** The same lines as written (JSON text), e.g. to see a field written twice. */
  raw: string[]
  /** Every report emitted, in order. */
  reports: SyncReport[]
}

/**
 * A libp2p node on 127.0.0.1 with a replica (in memory unless given) and a started anti-entropy
 * unit. Periodic and on-connect sync are off unless `init` turns them on, so tests decide who dials.
 */
export async function startPeer(
  nodeId: string,
  options: {
    replica?: Replica
    init?: AntiEntropyInit
    start?: boolean
    isMember?: (peerId: string) => boolean
  } = {},
): Promise<TestPeer> {
  const node = await startNode()
  const replica = options.replica ?? (await openReplica(nodeId))
  const { log, lines, raw } = memoryLogger()
  const sync = new AntiEntropy(
    { intervalMs: 0, syncOnConnect: false, ...options.init },
    {
      libp2p: node,
      replica,
      log,
      ...(options.isMember === undefined ? {} : { isMember: options.isMember }),
    },
  )
  const reports: SyncReport[] = []
  sync.on('peer:synced', (report) => reports.push(report))
  if (options.start ?? true) await sync.start()
  return { node, replica, sync, lines, raw, reports }
}

export async function stopPeers(...peers: Array<TestPeer | undefined>): Promise<void> {
  await Promise.all(
    peers.map(async (peer) => {
      if (!peer) return
      await peer.sync.stop()
      await peer.node.stop()
    }),
  )
}

/** Dials b from a and waits until both sides see the connection. */
export async function connect(a: RegistryLibp2p, b: RegistryLibp2p): Promise<void> {
  await a.dial(b.getMultiaddrs()[0]!)
  await waitFor(() => b.getConnections(a.peerId).length > 0, 'the inbound connection')
}

/** Polls `condition` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** The first report (already emitted or still to come) matching `match`. */
export async function reportOf(
  peer: TestPeer,
  match: (report: SyncReport) => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<SyncReport> {
  await waitFor(() => peer.reports.some(match), what, timeoutMs)
  return peer.reports.find(match)!
}

export { seeded } from '../../support/random.ts'

/** Puts of instances `inst-<from>` … `inst-<from+count-1>`, versions in the minute before NOW. */
export function instancePuts(
  count: number,
  options: { from?: number; node?: string; c?: number } = {},
): Change[] {
  const from = options.from ?? 0
  const node = options.node ?? 'node-a'
  const out: Change[] = []
  for (let i = from; i < from + count; i++) {
    const id = `inst-${i}`
    out.push({
      kind: 'instance',
      id,
      version: { ts: NOW - 60_000 + (i % 60_000), c: options.c ?? 0, node },
      value: instance(id, `svc-${i % 97}`, { tags: ['prod', `zone-${i % 3}`], details: `replica ${i}` }),
    })
  }
  return out
}

export function definitionPut(id: string, ts: number, node: string, image = 'nginx:latest'): Change {
  return { kind: 'definition', id, version: { ts, c: 0, node }, value: definition(id, image) }
}

export function tombstone(kind: Change['kind'], id: string, ts: number, node: string): Change {
  return { kind, id, version: { ts, c: 0, node }, value: null }
}

/** Merges changes into the replica in batches of 1,000. */
export async function seed(replica: Replica, changes: readonly Change[]): Promise<void> {
  for (let i = 0; i < changes.length; i += 1000) await replica.apply(changes.slice(i, i + 1000), 'sync')
}

/** Bytes of the changes as JSON: the size of a full copy on the wire. */
export function jsonBytes(changes: Iterable<Change>): number {
  let total = 0
  for (const change of changes) total += Buffer.byteLength(JSON.stringify(change))
  return total
}

/**
 * A hand-driven end of a sync stream, for playing a misbehaving peer: `write` sends raw bytes (so
 * frames can be broken on purpose), `send` one well-formed frame, `next` reads one frame as JSON.
 */
export class RawPeer {
  readonly stream: Stream
  readonly #out = pushable<Uint8Array | Uint8ArrayList>()
  readonly #in: AsyncIterator<Uint8ArrayList>

  constructor(stream: Stream) {
    this.stream = stream
    void pipe(this.#out, stream).catch(() => undefined)
    this.#in = pipe(stream, (source) => lp.decode(source, { maxDataLength: 64 * 1024 * 1024 }))[
      Symbol.asyncIterator
    ]()
  }

  static async dial(from: RegistryLibp2p, to: RegistryLibp2p): Promise<RawPeer> {
    return new RawPeer(await from.dialProtocol(to.peerId, SYNC_PROTOCOL))
  }

  write(bytes: Uint8Array | Uint8ArrayList): void {
    this.#out.push(bytes)
  }

  send(frame: unknown): void {
    this.write(lp.encode.single(Buffer.from(typeof frame === 'string' ? frame : JSON.stringify(frame))))
  }

  /** The next frame as JSON; undefined at the end of the stream or when it was reset. */
  async next(): Promise<Record<string, unknown> | undefined> {
    try {
      const next = await this.#in.next()
      return next.done
        ? undefined
        : (JSON.parse(Buffer.from(next.value.subarray()).toString()) as Record<string, unknown>)
    } catch {
      return undefined
    }
  }

  /** Reads `entries` frames up to the one with `last`. */
  async entries(): Promise<unknown[]> {
    const out: unknown[] = []
    for (;;) {
      const frame = await this.next()
      if (frame?.type !== 'entries') throw new Error(`expected entries, got ${JSON.stringify(frame)}`)
      out.push(...(frame.entries as unknown[]))
      if (frame.last) return out
    }
  }

  /** Ends our side; the peer sees the end of the stream. */
  end(): void {
    this.#out.end()
  }

  abort(): void {
    this.#out.end()
    this.stream.abort(new Error('test peer gone'))
  }
}
