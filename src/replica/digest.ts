import { hash } from 'node:crypto'
import { LEAF_BITS } from '../model/wire.ts'

/**
 * Digest of a replica as a fixed-shape tree over key-hash ranges.
 *
 * Every entry (key + its exact stored bytes) hashes to 32 bytes with SHA-256. Keys fall into
 * `LEAF_COUNT` leaves by a hash of the key alone, so the same key is in the same leaf on every replica.
 * A leaf's digest is the XOR of its entries' hashes; an inner node's digest is the XOR of its children,
 * which is the XOR of every entry under it. XOR makes the digest independent of insertion order and
 * cheap to keep current: adding or removing an entry XORs its hash into one leaf.
 *
 * Two replicas holding the same entries have equal digests at every node of the tree; replicas that
 * differ have different digests except with probability about 2^-256 per node. Anti-entropy walks down
 * from the root and only descends into nodes that differ, so the traffic grows with the difference,
 * not with the replica.
 */
export const LEAF_COUNT = 1 << LEAF_BITS
export const HASH_BYTES = 32
const WORDS = HASH_BYTES / 4

/** The leaf a key belongs to: the top `LEAF_BITS` bits of its 32-bit FNV-1a hash. */
export function leafOf(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) >>> (32 - LEAF_BITS)
}

export function entryHash(key: string, encoded: string): Buffer {
  return hash('sha256', `${key}\n${encoded}`, 'buffer')
}

export class DigestTree {
  /** LEAF_COUNT consecutive 32-byte leaf digests. */
  readonly #leaves = new Uint32Array(LEAF_COUNT * WORDS)
  /** The root, kept until the next change: heartbeats read it every beat. */
  #root: string | undefined

  /** Adds an entry, or removes it again: XOR is its own inverse. */
  toggle(key: string, encoded: string): void {
    const hash = entryHash(key, encoded)
    const words = new Uint32Array(hash.buffer, hash.byteOffset, WORDS)
    const base = leafOf(key) * WORDS
    for (let i = 0; i < WORDS; i++) this.#leaves[base + i]! ^= words[i]!
    this.#root = undefined
  }

  clear(): void {
    this.#leaves.fill(0)
    this.#root = undefined
  }

  /**
   * Digest of node `index` at tree `level` (level 0 is the root, level `LEAF_BITS` the leaves;
   * level L has 2^L nodes, each covering `LEAF_COUNT >> L` consecutive leaves).
   */
  node(level: number, index: number): Buffer {
    if (!Number.isInteger(level) || level < 0 || level > LEAF_BITS) throw new RangeError(`bad level ${level}`)
    const span = LEAF_COUNT >>> level
    if (!Number.isInteger(index) || index < 0 || index >= 1 << level)
      throw new RangeError(`bad index ${index}`)
    const out = new Uint32Array(WORDS)
    const end = (index + 1) * span * WORDS
    for (let at = index * span * WORDS; at < end; at += WORDS) {
      for (let i = 0; i < WORDS; i++) out[i]! ^= this.#leaves[at + i]!
    }
    return Buffer.from(out.buffer)
  }

  /** Digests of every node of one level, concatenated (32 bytes each). */
  level(level: number): Buffer[] {
    const out: Buffer[] = []
    for (let i = 0; i < 1 << level; i++) out.push(this.node(level, i))
    return out
  }

  /** Hex digest of the whole replica. */
  root(): string {
    this.#root ??= this.node(0, 0).toString('hex')
    return this.#root
  }
}
