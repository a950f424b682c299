import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type TestCluster } from '../support/cluster.ts'
import { waitFor } from '../support/wait.ts'

describe('instance health probes across agents', () => {
  let cluster: TestCluster

  beforeAll(async () => {
    cluster = await startCluster(2, { probeIntervalMs: 100 })
  })
  afterAll(() => cluster.stop())

  it('marks an instance backed by a listening socket Healthy, then Unreachable on every agent once it closes', async () => {
    const [a, b] = cluster.agents
    const server = createServer((socket) => socket.end())
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    // Registered through agent a, so a owns it (nodeUrl = a's URL) and is the only one probing it.
    const response = await fetch(`${a!.httpUrl}/registry-svc/instance`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: `http://127.0.0.1:${port}`, slug: 'probed-svc' }),
    })
    const { instance } = (await response.json()) as { instance: { id: string; status: string } }
    expect(instance.status).toBe('Unknown')
    const statusOn = async (url: string) => {
      const body = (await (await fetch(`${url}/registry-svc/instances?id=${instance.id}`)).json()) as {
        instances: Array<{ status: string }>
      }
      return body.instances[0]?.status
    }
    await waitFor('Healthy on both agents', async () =>
      (await Promise.all([statusOn(a!.httpUrl), statusOn(b!.httpUrl)])).every((s) => s === 'Healthy'),
    )
    expect(b!.prober.stats.probes).toBe(0)

    await new Promise((resolve) => server.close(resolve))
    await waitFor('Unreachable on both agents', async () =>
      (await Promise.all([statusOn(a!.httpUrl), statusOn(b!.httpUrl)])).every((s) => s === 'Unreachable'),
    )
    // Refused, or reset when a probe's connect raced the listener's close.
    expect(b!.replica.get('instance', instance.id)?.details).toMatch(/ECONNREFUSED|ECONNRESET/)
  })
})
