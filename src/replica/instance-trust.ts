import { type Instance, type Node, normaliseNodeUrl } from '../model/index.ts'
import type { Change } from './change.ts'
import { checkStatusSignature, signs } from './node-signature.ts'

/**
 * Whose word an instance's health is (docs/replication.md, Instance ownership). Any member registers
 * instances (a plain write: address, slug, tags, nodeUrl); only the instance's **owner**, the node
 * whose record URL is its `nodeUrl`, vouches for its health (`status`, `details`). The replica stores
 * and merges every write as it came — validity that depended on which node records a replica holds
 * at merge time would let replicas diverge for good — and answers each instance through this view:
 *
 * - a status write (`basedOn` set) shows its status when its writer owns the instance and, if the
 *   owner's record says it signs status writes, its signature verifies with the owner's key;
 * - a plain write shows status `Unknown` without details, unless its owner is a node of the previous
 *   release (a signed record without `signs`), whose re-registrations kept the status unsigned;
 * - anything else shows `Unknown` without details: a member can re-register an instance (which
 *   resets it to Unknown, as any registration does), never make it look Healthy.
 *
 * The view never carries `signature` (it is the owner's proof, kept in the stored change). It is a
 * function of the replica's state, so replicas that agree on their state answer alike.
 */
export function instanceView(
  change: Change,
  nodeById: (id: string) => Node | undefined,
  nodeByUrl: (url: string) => Node | undefined,
): Instance {
  const stored = change.value as Instance
  const signed = stored.signature !== undefined
  if (isVouched(change, stored, nodeById, nodeByUrl)) {
    if (!signed) return stored // the common unsigned case shares the stored object
    const { signature: _signature, ...shown } = stored
    return shown as Instance
  }
  // One copy, keys in their stored order (`status` keeps its place).
  const { signature: _signature, details: _details, ...shown } = stored
  shown.status = 'Unknown'
  return shown as Instance
}

function isVouched(
  change: Change,
  stored: Instance,
  nodeById: (id: string) => Node | undefined,
  nodeByUrl: (url: string) => Node | undefined,
): boolean {
  if (change.basedOn === undefined) {
    if (stored.status === 'Unknown' && stored.details === undefined) return true
    const owner = stored.nodeUrl === undefined ? undefined : nodeByUrl(stored.nodeUrl)
    return owner !== undefined && !signs(owner, 'status')
  }
  const writer = nodeById(change.version.node)
  if (writer === undefined || stored.nodeUrl === undefined) return false
  if (normaliseNodeUrl(writer.url) !== normaliseNodeUrl(stored.nodeUrl)) return false
  if (stored.signature === undefined) return !signs(writer, 'status')
  return signatureHolds(change, stored, writer)
}

/** Verdicts by change and key: a status write is verified once per key, however often it is re-viewed. */
const verified = new WeakMap<Change, { peerId: unknown; valid: boolean }>()

function signatureHolds(change: Change, stored: Instance, writer: Node): boolean {
  const known = verified.get(change)
  if (known !== undefined && known.peerId === writer.peerId) return known.valid
  const valid = checkStatusSignature(stored, change.version, change.basedOn!, writer) === 'valid'
  verified.set(change, { peerId: writer.peerId, valid })
  return valid
}

/**
 * Whether replacing node record `before` with `after` (either absent) can change the view of the
 * instances it owns: its URL, key or declared signing changed, or it appeared or went.
 */
export function trustChanged(before: Node | undefined, after: Node | undefined): boolean {
  if (before === undefined || after === undefined) return before !== after
  return (
    before.url !== after.url ||
    before.peerId !== after.peerId ||
    signs(before, 'status') !== signs(after, 'status')
  )
}
