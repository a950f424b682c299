import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type TestCluster } from '../support/cluster.ts'
import { waitFor } from '../support/wait.ts'

describe('HTTP across two agents', () => {
  let cluster: TestCluster

  beforeAll(async () => {
    cluster = await startCluster(2)
  })
  afterAll(() => cluster.stop())

  it('lists through one agent what was registered through the other, and a delete through the second removes it on the first', async () => {
    const [a, b] = cluster.agents
    const put = await fetch(`${a!.httpUrl}/registry-svc/instance`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'http://127.20.0.1:8080', slug: 'user-svc', tags: ['blue'] }),
    })
    expect(put.status).toBe(201)
    const { instance } = (await put.json()) as { instance: { id: string; nodeUrl: string } }
    expect(instance.nodeUrl).toBe(a!.selfUrl)

    const listed = await waitFor('the instance listed through the other agent', async () => {
      const body = (await (await fetch(`${b!.httpUrl}/registry-svc/instances?slug=user-svc`)).json()) as {
        instances: Array<{ id: string; tags: string[] }>
      }
      return body.instances.length === 1 ? body.instances : undefined
    })
    expect(listed[0]).toMatchObject({ id: instance.id, tags: ['blue'] })

    const nodes = (await (await fetch(`${b!.httpUrl}/registry-svc/nodes`, { method: 'POST' })).json()) as {
      nodes: Array<{ id: string }>
    }
    expect(nodes.nodes.map((n) => n.id).sort()).toEqual(['agent-0', 'agent-1'])

    expect(
      (await fetch(`${b!.httpUrl}/registry-svc/instance/${instance.id}`, { method: 'DELETE' })).status,
    ).toBe(204)
    await waitFor('the delete seen through the first agent', async () => {
      const body = (await (await fetch(`${a!.httpUrl}/registry-svc/instances?slug=user-svc`)).json()) as {
        instances: unknown[]
      }
      return body.instances.length === 0
    })
  })
})
