import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import stringify from 'safe-stable-stringify'
import type { Instance, Node } from '../model/index.ts'
import type { Version } from './version.ts'

/**
 * What a node signs with its libp2p key (Ed25519, Node's native `node:crypto`), so that a member of the
 * cluster cannot speak for another node:
 * - its **node record** (URL, peer id, the multiaddrs agents dial): the signature is the record's
 *   `signature` field, over the record without that field and the write's version (an old signed record
 *   cannot be replayed as a newer write). The key is the one the record's `peerId` names;
 *   docs/replication.md says how a node's key is bound to its id.
 * - its **status writes** of the instances it owns (probe results, heartbeats): the signature is the
 *   instance's `signature` field, over the instance without it, the version and the registration it
 *   is based on.
 * - its **beats** (liveness/beat.ts): `(node id, beat time)`, so a relay carries the node's own
 *   statement rather than the relay's word.
 * - its SWIM **alive** statements (liveness/swim): `(node id, incarnation)`, passed on by other members
 *   on its behalf. A record whose `signs` lists `alive` is of a node that speaks SWIM.
 * - its SWIM **datagrams** (p2p/datagram-channel.ts): each UDP datagram, so its sender is proven without
 *   a connection. A record whose `signs` lists `datagram` is of a node that takes SWIM frames as UDP
 *   datagrams on its libp2p TCP port number.
 *
 * A signed record lists in `signs` the writes its node signs; a reader then refuses those writes
 * unsigned. Records of the previous release (signed, without `signs`) keep their unsigned status
 * writes and beats accepted during a rolling upgrade. Entities are open to fields of newer agents, so
 * agents of the previous release keep and pass the signatures on unchanged.
 */

/** What a node of this release signs besides its record (its record's `signs`). */
export const SIGNED_WRITES = ['beat', 'status', 'alive', 'datagram'] as const
export type SignedWrite = (typeof SIGNED_WRITES)[number]

/** DER prefixes that turn a raw Ed25519 key into PKCS #8 (private) or SPKI (public) form. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** Public keys by peer id: a node's key is looked up on every record it writes. Bounded. */
const publicKeys = new Map<string, KeyObject | null>()
const MAX_CACHED_KEYS = 4096

export interface NodeSigner {
  /** The node whose writes this signer signs. */
  readonly nodeId: string
  /** The peer id of its key (the record's `peerId` must be this). */
  readonly peerId: string
  /** The record with `signs` and `signature` set. */
  sign(record: Node, version: Version): Node
  /** A status write of an owned instance, with `signature` set. */
  signStatus(instance: Instance, version: Version, basedOn: Version): Instance
  /** The signature of one of our beats, base64. */
  signBeat(beatT: number): string
  /** The signature of our SWIM alive at `incarnation`, base64. */
  signAlive(incarnation: number): string
  /** The signature (64 bytes) of one of our SWIM datagrams, `bytes` being all of it before the signature. */
  signDatagram(bytes: Uint8Array): Buffer
  /** Stops declaring `kind` in the records signed from now on (the agent cannot take UDP datagrams). */
  withdraw(kind: SignedWrite): void
}

const versionTuple = (v: Version) => [v.ts, v.c, v.node]

/** What a record's signature covers: the version and the record without `signature`, as canonical JSON. */
function recordBytes(record: Node, version: Version): Buffer {
  const { signature: _signature, ...unsigned } = record
  return Buffer.from(stringify({ d: unsigned, v: versionTuple(version) }) as string)
}

/** What a status write's signature covers: its base registration, the instance without `signature`, the version. */
function statusBytes(instance: Instance, version: Version, basedOn: Version): Buffer {
  const { signature: _signature, ...unsigned } = instance
  return Buffer.from(stringify({ b: versionTuple(basedOn), d: unsigned, v: versionTuple(version) }) as string)
}

/** What a beat's signature covers (a shape neither a record nor a status write has). */
function beatBytes(nodeId: string, beatT: number): Buffer {
  return Buffer.from(stringify({ beat: [nodeId, beatT] }) as string)
}

/** What an alive statement's signature covers. */
function aliveBytes(nodeId: string, incarnation: number): Buffer {
  return Buffer.from(stringify({ alive: [nodeId, incarnation] }) as string)
}

/** What a datagram's signature covers: a domain tag, then the datagram up to its signature. */
const DATAGRAM_DOMAIN = Buffer.from('p2p-registry/swim-datagram/1\n')
const datagramBytes = (bytes: Uint8Array) => Buffer.concat([DATAGRAM_DOMAIN, bytes])

/**
 * A signer for `nodeId`'s writes from its libp2p Ed25519 private key (`raw`: 32 bytes of seed then
 * 32 of public key, as `@libp2p/crypto` keeps it). `declared` is what its records say it signs (tests
 * declare less to stand for a node of the previous release).
 */
export function nodeSigner(
  nodeId: string,
  peerId: string,
  raw: Uint8Array,
  declared: readonly SignedWrite[] = SIGNED_WRITES,
): NodeSigner {
  const key = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, raw.subarray(0, 32)]),
    format: 'der',
    type: 'pkcs8',
  })
  const signed = (bytes: Buffer) => sign(null, bytes, key).toString('base64')
  let signsNow = [...declared]
  return {
    nodeId,
    peerId,
    sign(record, version) {
      const withSigns = { ...record, signs: [...signsNow] }
      return { ...withSigns, signature: signed(recordBytes(withSigns, version)) }
    },
    signStatus(instance, version, basedOn) {
      return { ...instance, signature: signed(statusBytes(instance, version, basedOn)) }
    },
    signBeat(beatT) {
      return signed(beatBytes(nodeId, beatT))
    },
    signAlive(incarnation) {
      return signed(aliveBytes(nodeId, incarnation))
    },
    signDatagram(bytes) {
      return sign(null, datagramBytes(bytes), key)
    },
    withdraw(kind) {
      signsNow = signsNow.filter((k) => k !== kind)
    },
  }
}

/** Whether `signature` is `peerId`'s key's signature of a datagram whose bytes before it are `bytes`. */
export function checkDatagramSignature(peerId: string, bytes: Uint8Array, signature: Uint8Array): boolean {
  const key = publicKeyOf(peerId)
  return key !== null && verify(null, datagramBytes(bytes), key, signature)
}

export type SignatureCheck = 'unsigned' | 'valid' | 'invalid'

/** Checks a node record's signature against the key its `peerId` names. */
export function checkNodeSignature(record: Node, version: Version): SignatureCheck {
  return check(record.signature, record.peerId, () => recordBytes(record, version))
}

/** Checks a status write's signature against the key of its owner's record (`owner.peerId`). */
export function checkStatusSignature(
  instance: Instance,
  version: Version,
  basedOn: Version,
  owner: Node,
): SignatureCheck {
  return check(instance.signature, owner.peerId, () => statusBytes(instance, version, basedOn))
}

/** Checks a beat's signature (`signature`, base64) against the key of its node's record. */
export function checkBeatSignature(
  signature: string | undefined,
  nodeId: string,
  beatT: number,
  record: Node,
): SignatureCheck {
  return check(signature, record.peerId, () => beatBytes(nodeId, beatT))
}

/** Checks a SWIM alive statement's signature against the key of its node's record. */
export function checkAliveSignature(
  signature: string | undefined,
  nodeId: string,
  incarnation: number,
  record: Node,
): SignatureCheck {
  return check(signature, record.peerId, () => aliveBytes(nodeId, incarnation))
}

function check(signature: unknown, peerId: unknown, bytes: () => Buffer): SignatureCheck {
  if (signature === undefined) return 'unsigned'
  if (typeof signature !== 'string' || typeof peerId !== 'string') return 'invalid'
  const key = publicKeyOf(peerId)
  if (key === null) return 'invalid'
  return verify(null, bytes(), key, Buffer.from(signature, 'base64')) ? 'valid' : 'invalid'
}

/**
 * Whether the node of a record signs writes of `kind`: its record is signed and lists `kind` in
 * `signs`. Such writes are then refused unsigned; writes of a node of the previous release are not.
 */
export function signs(record: Node, kind: SignedWrite): boolean {
  return isSignedNodeRecord(record) && Array.isArray(record.signs) && record.signs.includes(kind)
}

/** Whether a node record carries a signature (signed records sort above unsigned ones, `lww.ts`). */
export function isSignedNodeRecord(value: unknown): boolean {
  return (value as { signature?: unknown } | null)?.signature !== undefined
}

function publicKeyOf(peerId: string): KeyObject | null {
  const cached = publicKeys.get(peerId)
  if (cached !== undefined) return cached
  let key: KeyObject | null = null
  try {
    const publicKey = peerIdFromString(peerId).publicKey
    if (publicKey?.type === 'Ed25519') {
      key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey.raw]), format: 'der', type: 'spki' })
    }
  } catch {
    key = null
  }
  if (publicKeys.size >= MAX_CACHED_KEYS) publicKeys.delete(publicKeys.keys().next().value!)
  publicKeys.set(peerId, key)
  return key
}
