/**
 * `RegistryClient` (p2p-registry/client) against a real 2-agent cluster with tokens: every method of the
 * API it wraps, its answers as the agent stored them, and errors as typed exceptions carrying the
 * agent's `{"error"}` text.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { type AddressInfo, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ConnectionError,
  createClient,
  type Instance,
  type NodeRecord,
  RegistryClient,
  RegistryError,
} from '../../src/client/index.ts'
import type { Change } from '../../src/replica/change.ts'
import { startCluster, type TestCluster, waitMeshed } from '../support/cluster.ts'
import { waitFor } from '../support/wait.ts'

const ADMIN = 'client-admin-token-0123456'
const ORDERS = 'client-orders-token-012345'
const READER = 'client-reader-token-012345'

/** The error a call rejects with (fails the test when it resolves). */
async function failure(call: Promise<unknown>): Promise<Error> {
  return call.then(
    () => expect.unreachable('resolved'),
    (err: Error) => err,
  )
}

describe('RegistryClient', () => {
  let cluster: TestCluster
  let dir: string
  let admin: RegistryClient
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'client-api-'))
    const tokens = join(dir, 'tokens.yaml')
    await writeFile(
      tokens,
      `- token: ${ADMIN}\n  role: admin\n- token: ${ORDERS}\n  role: service\n  slug: orders\n- token: ${READER}\n  role: reader\n`,
    )
    cluster = await startCluster(2, { apiTokensFile: tokens, probeIntervalMs: 100 })
    await waitMeshed(cluster.agents)
    await waitFor('both node records everywhere', () =>
      cluster.agents.every((a) => a.replica.nodes().length === 2),
    )
    admin = createClient({ url: cluster.agents[0]!.httpUrl, token: ADMIN }).api
  }, 60_000)
  afterAll(async () => {
    await cluster?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('registers, lists with filters, heartbeats and removes instances', async () => {
    const orders = new RegistryClient({ url: cluster.agents[0]!.httpUrl, token: ORDERS })
    const stored = await orders.register({
      url: 'http://127.0.0.1:9/orders',
      slug: 'orders',
      tags: ['blue'],
      check: { type: 'ttl', ttlMs: 60_000 },
    })
    expect(stored).toMatchObject({ slug: 'orders', url: 'http://127.0.0.1:9/orders', status: 'Unknown' })
    await orders.register({ url: 'http://127.0.0.1:9/orders-2', slug: 'orders', tags: ['green'] })

    const blue = await admin.instances({ slug: 'orders', tag: 'blue' })
    expect(blue.map((i) => i.id)).toEqual([stored.id])
    expect((await admin.instances({ slug: 'orders' })).length).toBe(2)

    // The owner takes the heartbeat and writes the status it reports (after answering).
    await orders.heartbeat(stored.id, { status: 'Degraded', details: 'warming up' })
    await waitFor(
      'the reported status',
      async () => (await admin.instances({ id: stored.id }))[0]?.status === 'Degraded',
    )
    expect((await admin.instances({ id: stored.id }))[0]?.details).toBe('warming up')

    // The other agent answers the same, once gossip carried it.
    const other = createClient({ url: cluster.agents[1]!.httpUrl }).api
    await waitFor(
      'the heartbeat on the other agent',
      async () => (await other.instances({ id: stored.id }))[0]?.status === 'Degraded',
    )

    await orders.remove(stored.id)
    expect(await admin.instances({ id: stored.id })).toEqual([])
  })

  it('saves, lists and deletes definitions', async () => {
    await admin.saveDefinition({ id: 'client-def', image: { name: 'nginx:1.27', port: 80 } })
    const definitions = await admin.definitions()
    expect(definitions.find((d) => d.id === 'client-def')).toMatchObject({ image: { name: 'nginx:1.27' } })
    await admin.deleteDefinition('client-def')
    expect((await admin.definitions()).some((d) => d.id === 'client-def')).toBe(false)
  })

  it('reads nodes, itself and its health, and removes a node record', async () => {
    const self: NodeRecord = await admin.self()
    expect(self.id).toBe(cluster.agents[0]!.config.nodeId)
    const all = await admin.nodes()
    expect(all.map((n) => n.id).sort()).toEqual(cluster.agents.map((a) => a.config.nodeId).sort())
    expect((await admin.nodes([self.id])).map((n) => n.id)).toEqual([self.id])

    const health = await admin.health()
    expect(health).toMatchObject({ status: 'ok', nodeId: self.id, nodes: 2 })
    expect(health.digest).toMatch(/^[0-9a-f]+$/)

    // A live node writes its record again; removing it is accepted and then undone by the node.
    const second = cluster.agents[1]!
    const deleted: string[] = []
    const onChange = (changes: Change[]) => {
      for (const c of changes) if (c.kind === 'node' && c.value === null) deleted.push(c.id)
    }
    cluster.agents[0]!.replica.on('change', onChange)
    try {
      await admin.removeNode(second.config.selfUrl!)
      expect(deleted).toEqual([second.config.nodeId])
      await waitFor(
        'the removed node back',
        async () => (await admin.nodes([second.config.nodeId!])).length === 1,
      )
    } finally {
      cluster.agents[0]!.replica.off('change', onChange)
    }
    const unknown = await failure(admin.removeNode('http://127.0.0.1:9'))
    expect((unknown as RegistryError).status).toBe(404)
  })

  it('follows the instances watch: the answer at once, then after a change', async () => {
    const answers: Instance[][] = []
    const controller = new AbortController()
    const following = admin
      .watch<Instance[]>(
        'instances',
        { slug: 'watched-by-client' },
        (answer) => answers.push(answer),
        controller.signal,
      )
      .catch((err: Error) => err)
    await waitFor('the first answer', () => answers.length === 1)
    expect(answers[0]).toEqual([])
    await admin.register({
      url: 'http://127.0.0.1:9/watched',
      slug: 'watched-by-client',
      check: { type: 'none' },
    })
    await waitFor('the change', () => answers.at(-1)?.length === 1)
    controller.abort()
    await following
  })

  it("throws RegistryError with the agent's status and text, and changes nothing", async () => {
    const reader = new RegistryClient({ url: cluster.agents[0]!.httpUrl, token: READER })
    const refused = await failure(reader.register({ url: 'http://127.0.0.1:9/x', slug: 'orders' }))
    expect(refused).toBeInstanceOf(RegistryError)
    expect((refused as RegistryError).status).toBe(403)
    expect(refused.message).toMatch(/reader/)

    const orders = new RegistryClient({ url: cluster.agents[0]!.httpUrl, token: ORDERS })
    const otherSlug = await failure(orders.register({ url: 'http://127.0.0.1:9/y', slug: 'billing' }))
    expect((otherSlug as RegistryError).status).toBe(403)
    expect(otherSlug.message).toMatch(/orders/)

    const invalid = await failure(admin.register({ slug: 'orders' }))
    expect((invalid as RegistryError).status).toBe(400)
    expect(invalid.message).toMatch(/url|host|ip/)

    const missing = await failure(admin.remove('inst_does_not_exist'))
    expect((missing as RegistryError).status).toBe(404)
    expect(missing.message).toMatch(/inst_does_not_exist/)

    const noToken = await failure(
      createClient({ url: cluster.agents[0]!.httpUrl }).api.saveDefinition({ id: 'x' }),
    )
    expect((noToken as RegistryError).status).toBe(401)

    expect((await admin.instances({ slug: 'billing' })).length).toBe(0)
    expect((await admin.definitions()).some((d) => d.id === 'x')).toBe(false)
  })

  it('throws ConnectionError when no agent answers', async () => {
    // A port that was just free: nothing listens there.
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    await new Promise((resolve) => server.close(resolve))
    const nobody = new RegistryClient({ url: `http://127.0.0.1:${port}` })
    const err = await failure(nobody.instances())
    expect(err).toBeInstanceOf(ConnectionError)
    expect(err.message).toBe(`cannot reach the agent at http://127.0.0.1:${port}: ECONNREFUSED`)
  })
})
