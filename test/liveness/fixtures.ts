import { EventEmitter } from 'node:events'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { pino } from 'pino'
import type {
  BeatSink,
  BeatSource,
  HeartbeatLibp2p,
  NodeUsage,
  ResourceSource,
} from '../../src/liveness/index.ts'
import type { GpuInfo } from '../../src/liveness/nvidia-smi.ts'
import type { Node } from '../../src/model/index.ts'
import type { FrameChannelEvents } from '../../src/p2p/frame-channel.ts'
import { HybridClock } from '../../src/replica/hlc.ts'
import { MemoryStore } from '../../src/replica/memory-store.ts'
import { type NodeSigner, nodeSigner, type SignedWrite } from '../../src/replica/node-signature.ts'
import { Replica } from '../../src/replica/replica.ts'
import type { Logger } from '../../src/support/logger.ts'

/** A logger that drops everything (TEST_LOG_LEVEL=debug shows it). */
export function testLogger(): Logger {
  return pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' })
}

/** A replica in memory whose clock follows Date.now (so fake timers move it). */
export function memoryReplica(nodeId: string, signer?: NodeSigner): Promise<Replica> {
  const now = () => Date.now()
  return Replica.open({
    store: new MemoryStore(),
    clock: new HybridClock({ nodeId, now }),
    now,
    log: testLogger(),
    ...(signer === undefined ? {} : { signer }),
  })
}

/**
 * A replica of node `nodeId` at `url`, holding its own signed node record: what an agent's prober
 * writes through (status writes show only for the instance's owner, replica/instance-trust.ts).
 */
export async function ownerReplica(nodeId: string, url: string): Promise<Replica> {
  const { signer } = await nodeIdentity(nodeId)
  const replica = await memoryReplica(nodeId, signer)
  await replica.put('node', {
    id: nodeId,
    url,
    lastHeartbeat: new Date().toISOString(),
    peerId: signer.peerId,
  })
  return replica
}

/** A node's libp2p key, its peer id and the signer of its records, as an agent has them. */
/** `declared`: what its records say it signs (less stands for a node of an earlier release). */
export async function nodeIdentity(
  nodeId: string,
  declared?: readonly SignedWrite[],
  key?: PrivateKey,
): Promise<{ key: PrivateKey; peerId: PeerId; signer: NodeSigner }> {
  key ??= await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key)
  return { key, peerId, signer: nodeSigner(nodeId, peerId.toString(), key.raw, declared) }
}

export async function randomPeerId(): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

/** Fixed machine figures, so record contents do not depend on the test machine. */
export function fakeResources(gpus: GpuInfo[] = []): ResourceSource & { gpuList: GpuInfo[] } {
  const usage: NodeUsage = {
    cpu: { used: 0.5, total: 4, percent: 12.5 },
    memory: { used: 1024, total: 4096, percent: 25 },
    disk: { used: 10, total: 100, percent: 10 },
  }
  return {
    gpuList: gpus,
    async usage() {
      return structuredClone(usage)
    },
    async gpus() {
      return this.gpuList
    },
  }
}

/** A libp2p stand-in for the heartbeat: a peer id and addresses. */
export function fakeHeartbeatLibp2p(peerId: PeerId, addrs = ['/ip4/127.0.0.1/tcp/11338']) {
  const libp2p = {
    peerId,
    addrs,
    getMultiaddrs() {
      return libp2p.addrs.map((a) => multiaddr(`${a}/p2p/${peerId.toString()}`))
    },
  }
  return libp2p satisfies HeartbeatLibp2p
}

/** A beat channel stand-in: records what the heartbeat broadcasts, and can fail. */
export function fakeBeatSink() {
  const sink = {
    sent: [] as Uint8Array[],
    fail: false,
    broadcast(data: Uint8Array): number {
      if (sink.fail) throw new Error('cannot send')
      sink.sent.push(data)
      return 0
    },
  }
  return sink satisfies BeatSink
}

/** A beat channel stand-in for the failure detector: `frame` delivers as if from a direct peer. */
export class FakeBeatSource extends EventEmitter<FrameChannelEvents> implements BeatSource {
  frame(from: PeerId, data: Uint8Array | string): void {
    this.emit('frame', from.toString(), typeof data === 'string' ? new TextEncoder().encode(data) : data)
  }
}

/** A node record as node `id` would write it. */
export function nodeRecord(id: string, lastHeartbeatMs: number, extra: Partial<Node> = {}): Node {
  return {
    id,
    url: `http://${id}.test:11337`,
    lastHeartbeat: new Date(lastHeartbeatMs).toISOString(),
    ...extra,
  }
}

/** Puts node `id`'s own record into `replica` as if gossiped from it. */
export async function receiveRecord(replica: Replica, record: Node, tsMs = Date.now()): Promise<void> {
  const [outcome] = await replica.apply(
    [{ kind: 'node', id: record.id, version: { ts: tsMs, c: 0, node: record.id }, value: record }],
    'gossip',
  )
  if (outcome !== 'applied') throw new Error(`record of ${record.id} was ${outcome}`)
}

/** Resolves with the next `event` of `emitter` whose payload passes `match`, or fails after `timeoutMs`. */
export function nextEvent<A extends unknown[]>(
  emitter: EventEmitter,
  event: string,
  match: (...args: A) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<A> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener)
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${event}`))
    }, timeoutMs)
    const listener = (...args: unknown[]) => {
      if (!match(...(args as A))) return
      clearTimeout(timer)
      emitter.off(event, listener)
      resolve(args as A)
    }
    emitter.on(event, listener)
  })
}
