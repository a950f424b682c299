import { describe, expect, it } from 'vitest'
import type { Instance, Node } from '../../src/model/index.ts'
import type { Change } from '../../src/replica/change.ts'
import { type NodeSigner, nodeSigner } from '../../src/replica/node-signature.ts'
import type { Replica } from '../../src/replica/replica.ts'
import type { Version } from '../../src/replica/version.ts'
import { nodeIdentity } from '../liveness/fixtures.ts'
import { instance, NOW, openReplica, ownedStatus } from './fixtures.ts'

const OWNER_URL = 'http://127.0.0.2:11337'
const OTHER_URL = 'http://127.0.0.3:11337'
const registration: Version = { ts: NOW, c: 0, node: 'node-x' }
const registered = instance('i1', 'svc', { nodeUrl: OWNER_URL })

const v = (ts: number, node: string): Version => ({ ts, c: 0, node })

/** A node record as its node writes it: signed by `signer`, or unsigned (a record of round 1). */
function recordOf(nodeId: string, url: string, signer?: NodeSigner, ts = NOW): Change {
  const record: Node = { id: nodeId, url, lastHeartbeat: new Date(ts).toISOString() }
  const version = v(ts, nodeId)
  const value = signer ? signer.sign({ ...record, peerId: signer.peerId }, version) : record
  return { kind: 'node', id: nodeId, version, value }
}

/** A status write signed by `signer` as node `writer`. */
function signedStatus(signer: NodeSigner, writer: string, value: Instance, ts = NOW + 10): Change {
  const version = v(ts, writer)
  return {
    ...ownedStatus(value, writer, registration, ts),
    value: signer.signStatus(value, version, registration),
  }
}

const shown = (replica: Replica) => replica.get('instance', 'i1')

describe('instance health is shown on its owner word only', () => {
  it("shows the owner's signed status write, without its signature", async () => {
    const owner = await nodeIdentity('node-b')
    const replica = await openReplica('node-a')
    await replica.apply([recordOf('node-b', OWNER_URL, owner.signer)])
    const write = signedStatus(owner.signer, 'node-b', { ...registered, status: 'Healthy', details: 'ok' })
    expect(await replica.apply([write])).toEqual(['applied'])
    expect(shown(replica)).toEqual({ ...registered, status: 'Healthy', details: 'ok' })
    expect(shown(replica)).not.toHaveProperty('signature')
    expect(replica.instances({ status: 'Healthy' }).map((i) => i.id)).toEqual(['i1'])
  })

  it('shows Unknown for a forged, tampered, unsigned or misplaced status write, though it is stored', async () => {
    const owner = await nodeIdentity('node-b')
    const attacker = await nodeIdentity('node-m')
    const healthy = { ...registered, status: 'Healthy' as const, details: 'forged' }
    const forgeries: Array<[string, Change]> = [
      ['signed with the attacker key in the owner name', signedStatus(attacker.signer, 'node-b', healthy)],
      [
        'tampered after signing',
        (() => {
          const good = signedStatus(owner.signer, 'node-b', { ...registered, status: 'Unreachable' })
          return { ...good, value: { ...(good.value as Instance), status: 'Healthy' } }
        })(),
      ],
      [
        'unsigned, in the name of an owner that signs',
        ownedStatus(healthy, 'node-b', registration, NOW + 10),
      ],
      ['by a member that is not the owner', signedStatus(attacker.signer, 'node-m', healthy)],
      [
        'by a member that moved nodeUrl to itself in a status write',
        signedStatus(attacker.signer, 'node-m', { ...healthy, nodeUrl: 'http://127.0.0.4:1' }),
      ],
      [
        'a registration that carries a status',
        { kind: 'instance', id: 'i1', version: v(NOW + 10, 'node-m'), value: healthy },
      ],
    ]
    for (const [name, forged] of forgeries) {
      const replica = await openReplica('node-a')
      await replica.apply([
        recordOf('node-b', OWNER_URL, owner.signer),
        recordOf('node-m', OTHER_URL, attacker.signer),
        { kind: 'instance', id: 'i1', version: registration, value: registered },
      ])
      expect(await replica.apply([forged]), name).toEqual(['applied'])
      expect(shown(replica)?.status, name).toBe('Unknown')
      expect(shown(replica), name).not.toHaveProperty('details')
      expect(replica.instances({ status: 'Healthy' }), name).toEqual([])
    }
  })

  it('believes unsigned health from an owner of the previous release (a signed record without signs)', async () => {
    const { key, peerId } = await nodeIdentity('node-b')
    const previous = nodeSigner('node-b', peerId.toString(), key.raw, [])
    const replica = await openReplica('node-a')
    expect(await replica.apply([recordOf('node-b', OWNER_URL, previous)])).toEqual(['applied'])
    await replica.apply([ownedStatus({ ...registered, status: 'Healthy' }, 'node-b', registration, NOW + 10)])
    expect(shown(replica)?.status).toBe('Healthy')
    // Its re-registrations kept the status in a plain write; believed for such an owner only.
    await replica.apply([
      {
        kind: 'instance',
        id: 'i1',
        version: v(NOW + 20, 'node-x'),
        value: { ...registered, status: 'Degraded' },
      },
    ])
    expect(shown(replica)?.status).toBe('Degraded')
  })

  it('re-judges the instances of a node when its record arrives, changes URL or goes; the stored state never differs', async () => {
    const owner = await nodeIdentity('node-b')
    const write = signedStatus(owner.signer, 'node-b', { ...registered, status: 'Healthy' })
    const record = recordOf('node-b', OWNER_URL, owner.signer)
    const early = await openReplica('node-a')
    const late = await openReplica('node-c')
    await early.apply([record, write])
    await late.apply([write])
    expect(shown(late)?.status).toBe('Unknown')
    await late.apply([record])
    expect(shown(late)?.status).toBe('Healthy')
    expect(late.digest()).toBe(early.digest())

    // The owner moves to another URL: it no longer owns instances on the old one.
    await late.apply([recordOf('node-b', OTHER_URL, owner.signer, NOW + 100)])
    expect(shown(late)?.status).toBe('Unknown')
    await late.apply([recordOf('node-b', OWNER_URL, owner.signer, NOW + 200)])
    expect(shown(late)?.status).toBe('Healthy')
    await late.apply([{ kind: 'node', id: 'node-b', version: v(NOW + 300, 'node-x'), value: null }])
    expect(shown(late)?.status).toBe('Unknown')
  })
})
