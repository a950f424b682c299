import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Node } from '../../src/model/index.ts'
import type { Change } from '../../src/replica/change.ts'
import { checkNodeSignature, type NodeSigner, nodeSigner } from '../../src/replica/node-signature.ts'
import { NOW, openReplica } from './fixtures.ts'

async function signerFor(nodeId: string): Promise<NodeSigner> {
  const key = await generateKeyPair('Ed25519')
  return nodeSigner(nodeId, peerIdFromPrivateKey(key).toString(), key.raw)
}

function record(
  signer: NodeSigner | { nodeId: string; peerId: string },
  url = 'http://127.0.0.1:11337',
): Node {
  return { id: signer.nodeId, url, lastHeartbeat: new Date(NOW).toISOString(), peerId: signer.peerId }
}

const v = (ts: number, node = 'node-b') => ({ ts, c: 0, node })
const put = (value: Node, ts: number): Change => ({
  kind: 'node',
  id: value.id,
  version: v(ts, value.id),
  value,
})
const signedPut = (signer: NodeSigner, ts: number, url?: string): Change =>
  put(signer.sign(record(signer, url), v(ts, signer.nodeId)), ts)

describe('node record signatures', () => {
  it('verify for the record and version signed, and for nothing else', async () => {
    const b = await signerFor('node-b')
    const signed = b.sign(record(b), v(NOW))
    expect(checkNodeSignature(signed, v(NOW))).toBe('valid')
    expect(checkNodeSignature(record(b), v(NOW))).toBe('unsigned')
    expect(checkNodeSignature({ ...signed, url: 'http://127.6.6.6:1' }, v(NOW))).toBe('invalid')
    // Replayed as a newer write: the version is signed too.
    expect(checkNodeSignature(signed, v(NOW + 1))).toBe('invalid')
    // Signed by another key than the one its peerId names.
    const other = await signerFor('node-b')
    expect(checkNodeSignature({ ...other.sign(record(other), v(NOW)), peerId: b.peerId }, v(NOW))).toBe(
      'invalid',
    )
    expect(checkNodeSignature({ ...signed, peerId: 'not-a-peer-id' }, v(NOW))).toBe('invalid')
  })

  it('the replica keeps a node bound to its key, and signed records above unsigned ones', async () => {
    const b = await signerFor('node-b')
    const impostor = await signerFor('node-b')
    const replica = await openReplica('node-a')
    expect(await replica.apply([signedPut(b, NOW)])).toEqual(['applied'])
    // Another key, however new the version: refused while node-b's signed record is held.
    expect(await replica.apply([signedPut(impostor, NOW + 10, 'http://127.6.6.6:1')])).toEqual([
      'rejected-owner',
    ])
    // Unsigned, newer: loses to the signed record (as written by a forger or an agent of an older release).
    expect(await replica.apply([put(record(b, 'http://127.6.6.6:1'), NOW + 20)])).toEqual(['stale'])
    // A bad signature is refused outright.
    const tampered = signedPut(b, NOW + 30)
    expect(
      await replica.apply([
        { ...tampered, value: { ...(tampered.value as Node), url: 'http://127.6.6.6:1' } },
      ]),
    ).toEqual(['rejected-signature'])
    expect(replica.get('node', 'node-b')?.url).toBe('http://127.0.0.1:11337')
    // An operator's delete removes it; then a new key may take the id (a fresh join).
    expect(
      await replica.apply([{ kind: 'node', id: 'node-b', version: v(NOW + 40, 'admin'), value: null }]),
    ).toEqual(['applied'])
    expect(await replica.apply([signedPut(impostor, NOW + 50, 'http://127.0.0.2:11337')])).toEqual([
      'applied',
    ])
    expect(replica.get('node', 'node-b')?.peerId).toBe(impostor.peerId)
  })

  it('signs the node’s own record on write', async () => {
    const a = await signerFor('node-a')
    const replica = await openReplica('node-a', { signer: a })
    const written = await replica.put('node', record(a))
    expect(checkNodeSignature(written.value as Node, written.version)).toBe('valid')
    const peer = await openReplica('node-z')
    expect(await peer.apply([written])).toEqual(['applied'])
  })

  it('any order of signed records, unsigned ones and deletes of one node gives the same state (one key)', async () => {
    const b = await signerFor('node-b')
    const changes: Change[] = []
    for (let i = 0; i < 6; i++) {
      changes.push(signedPut(b, NOW + i * 3, `http://127.0.0.${i + 1}:11337`))
      changes.push(put(record(b, `http://127.0.1.${i + 1}:11337`), NOW + i * 3 + 1))
      changes.push({ kind: 'node', id: 'node-b', version: v(NOW + i * 3 + 2, 'admin'), value: null })
    }
    const stateAfter = async (order: readonly Change[]) => {
      const replica = await openReplica('observer')
      for (const change of order) await replica.apply([change])
      return JSON.stringify(replica.entry('node/node-b'))
    }
    const expected = await stateAfter(changes)
    await fc.assert(
      fc.asyncProperty(fc.shuffledSubarray(changes, { minLength: changes.length }), async (order) => {
        expect(await stateAfter(order)).toBe(expected)
      }),
      { numRuns: 100 },
    )
  })
})
