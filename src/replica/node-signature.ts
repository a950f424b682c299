import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import stringify from 'safe-stable-stringify'
import type { Node } from '../model/index.ts'
import type { Version } from './version.ts'

/**
 * Node records are signed by their node's libp2p key (Ed25519), so a member cannot rewrite another
 * node's record (its URL, peer id and the multiaddrs agents dial). The signature is a field of the
 * record, `signature`: node records are open to fields of newer agents, so agents of the previous
 * release keep and pass it on unchanged. It covers the record without that field and the write's
 * version, so an old signed record cannot be replayed as a newer write. The key is the one the
 * record's `peerId` names. docs/replication.md says how a node's key is bound to its id.
 *
 * Signing and verifying use Node's native Ed25519 (`node:crypto`).
 */

/** DER prefixes that turn a raw Ed25519 key into PKCS #8 (private) or SPKI (public) form. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** Public keys by peer id: a node's key is looked up on every record it writes. Bounded. */
const publicKeys = new Map<string, KeyObject | null>()
const MAX_CACHED_KEYS = 4096

export interface NodeSigner {
  /** The node whose records this signer signs. */
  readonly nodeId: string
  /** The peer id of its key (the record's `peerId` must be this). */
  readonly peerId: string
  sign(record: Node, version: Version): Node
}

/** What the signature covers: the version and the record without `signature`, as canonical JSON. */
function signedBytes(record: Node, version: Version): Buffer {
  const { signature: _signature, ...unsigned } = record
  return Buffer.from(stringify({ d: unsigned, v: [version.ts, version.c, version.node] }) as string)
}

/**
 * A signer for `nodeId`'s records from its libp2p Ed25519 private key (`raw`: 32 bytes of seed then
 * 32 of public key, as `@libp2p/crypto` keeps it).
 */
export function nodeSigner(nodeId: string, peerId: string, raw: Uint8Array): NodeSigner {
  const key = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, raw.subarray(0, 32)]),
    format: 'der',
    type: 'pkcs8',
  })
  return {
    nodeId,
    peerId,
    sign(record, version) {
      return { ...record, signature: sign(null, signedBytes(record, version), key).toString('base64') }
    },
  }
}

export type SignatureCheck = 'unsigned' | 'valid' | 'invalid'

/** Checks a node record's signature against the key its `peerId` names. */
export function checkNodeSignature(record: Node, version: Version): SignatureCheck {
  const { signature, peerId } = record
  if (signature === undefined) return 'unsigned'
  if (typeof signature !== 'string' || typeof peerId !== 'string') return 'invalid'
  const key = publicKeyOf(peerId)
  if (key === null) return 'invalid'
  return verify(null, signedBytes(record, version), key, Buffer.from(signature, 'base64'))
    ? 'valid'
    : 'invalid'
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
