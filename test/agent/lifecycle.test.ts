/**
 * The instance lifecycle through the HTTP API of a real 3-agent cluster (in this process): what the
 * owner's checks find is seen on every agent, service heartbeats go to the owner, and a deregistered
 * instance is gone everywhere for good.
 */
import { createServer, type Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type TestAgent, type TestCluster, waitConverged } from '../support/cluster.ts'
import { waitFor } from '../support/wait.ts'

const WAIT = { timeoutMs: 10_000, everyMs: 20 }

describe('instance lifecycle across a cluster', () => {
  let cluster: TestCluster

  beforeAll(async () => {
    cluster = await startCluster(3, { probeIntervalMs: 200 })
  }, 60_000)
  afterAll(() => cluster?.stop())

  const api = async (agent: TestAgent, method: string, url: string, payload?: object) => {
    const answer = await agent.http.inject({
      method: method as 'PUT',
      url,
      ...(payload === undefined ? {} : { payload }),
    })
    return { status: answer.statusCode, json: answer.body ? answer.json() : undefined }
  }
  const statusEverywhere = (id: string) => cluster.agents.map((a) => a.replica.get('instance', id)?.status)

  it('shows an http check Healthy, Unreachable when its server stops, Healthy when it is back, on every agent', async () => {
    const [owner] = cluster.agents
    let server: Server = createServer((_req, res) => res.end('ok'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    const registered = await api(owner!, 'PUT', '/registry-svc/instance', {
      url: `http://127.0.0.1:${port}`,
      slug: 'web',
      check: { type: 'http', path: '/health', intervalMs: 200, timeoutMs: 150 },
    })
    expect(registered.status).toBe(201)
    const id = registered.json.instance.id as string
    const everywhere = (status: string) => () => statusEverywhere(id).every((s) => s === status)
    await waitFor('Healthy everywhere', everywhere('Healthy'), WAIT)
    await new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
    await waitFor('Unreachable everywhere', everywhere('Unreachable'), WAIT)
    server = createServer((_req, res) => res.end('ok'))
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    await waitFor('Healthy everywhere again', everywhere('Healthy'), WAIT)
    server.closeAllConnections()
    server.close()
    // The check is part of the record: every agent holds it.
    for (const agent of cluster.agents) {
      expect(agent.replica.get('instance', id)?.check).toEqual({
        type: 'http',
        path: '/health',
        intervalMs: 200,
        timeoutMs: 150,
      })
    }
  })

  it('takes heartbeats on the owner, refuses them elsewhere naming the owner, and deregisters a ttl instance for good', async () => {
    const [owner, other] = cluster.agents
    const registered = await api(owner!, 'PUT', '/registry-svc/instance', {
      url: 'tcp://127.0.0.1:7',
      slug: 'worker',
      check: { type: 'ttl', ttlMs: 600, intervalMs: 100, deregisterAfterMs: 800 },
    })
    const id = registered.json.instance.id as string
    const beat = (agent: TestAgent, body?: object) =>
      api(agent, 'PUT', `/registry-svc/instance/${id}/heartbeat`, body)
    expect((await beat(owner!, { status: 'Degraded', details: 'warming up' })).status).toBe(204)
    await waitFor('Degraded everywhere', () => statusEverywhere(id).every((s) => s === 'Degraded'), WAIT)
    const elsewhere = await beat(other!)
    expect(elsewhere).toEqual({
      status: 409,
      json: {
        error: `instance "${id}" is owned by the agent at ${owner!.selfUrl}; send its heartbeats there`,
      },
    })
    expect((await beat(owner!)).status).toBe(204)
    await waitFor('Healthy everywhere', () => statusEverywhere(id).every((s) => s === 'Healthy'), WAIT)
    // No more heartbeats: Unreachable after the ttl, then deleted after deregisterAfterMs.
    await waitFor(
      'Unreachable everywhere',
      () => statusEverywhere(id).every((s) => s === 'Unreachable'),
      WAIT,
    )
    await waitFor('deleted everywhere', () => statusEverywhere(id).every((s) => s === undefined), WAIT)
    expect((await beat(owner!)).status).toBe(404)
    await waitConverged(cluster.agents)
    expect(statusEverywhere(id)).toEqual([undefined, undefined, undefined])
    expect(owner!.prober.stats.deregistered).toBeGreaterThanOrEqual(1)
  })
})
