/**
 * `p2p-registry/client` against real agents (in this process) and real HTTP servers on loopback:
 * requests spread over a service's instances, a dead one is retried around and ejected, then used again
 * once healthy; zones; an agent restart; self-registration with a ttl.
 */
import { createServer, type Server } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createClient, RegistryError, type Service } from '../../src/client/index.ts'
import { startCluster, type TestCluster, waitMeshed } from '../support/cluster.ts'
import { waitFor } from '../support/wait.ts'

const WAIT = { timeoutMs: 10_000, everyMs: 20 }

/** An HTTP server on 127.0.0.1 that answers its name; `port` pins it (to start it again). */
async function named(
  name: string,
  port = 0,
): Promise<{ server: Server; port: number; stop: () => Promise<void> }> {
  const server = createServer((_req, res) => res.end(name))
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return {
    server,
    port: (server.address() as { port: number }).port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** An HTTP server on 127.0.0.1 that answers 500 to everything. */
async function failing(): Promise<{ port: number; stop: () => Promise<void> }> {
  const server = createServer((_req, res) => {
    res.statusCode = 500
    res.end('broken')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

describe('p2p-registry/client', () => {
  let cluster: TestCluster
  const stops: Array<() => Promise<void> | void> = []
  beforeAll(async () => {
    cluster = await startCluster(2, { probeIntervalMs: 100 })
    await waitMeshed(cluster.agents)
    await waitFor('both node records everywhere', () =>
      cluster.agents.every((a) => a.replica.nodes().length === 2),
    )
  }, 60_000)
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop()
  })
  afterAll(() => cluster?.stop())

  const healthy = (service: Service, n: number) =>
    waitFor(
      `${n} healthy instances`,
      () => service.instances().filter((i) => i.status === 'Healthy').length === n,
      WAIT,
    )

  it('spreads requests, retries around a dead instance, ejects it, and uses it again once it is back', async () => {
    const [agent] = cluster.agents
    const client = createClient({ url: agent!.httpUrl })
    const servers = await Promise.all(['a', 'b', 'c'].map((n) => named(n)))
    for (const s of servers) stops.push(() => (s.server.listening ? s.stop() : undefined))
    for (const s of servers) {
      await client.api.register({
        url: `http://127.0.0.1:${s.port}`,
        slug: 'spread',
        check: { type: 'http', intervalMs: 100 },
      })
    }
    const service = client.service('spread', { ejectAfterFailures: 1, ejectForMs: 1_000 })
    stops.push(() => service.close())
    await service.ready()
    await healthy(service, 3)
    const answers: string[] = []
    for (let i = 0; i < 30; i++) answers.push(await (await service.fetch('/')).text())
    expect(['a', 'b', 'c'].map((n) => answers.filter((x) => x === n).length)).toEqual([10, 10, 10])

    // b dies. Before the owner's check notices, requests that pick it are retried elsewhere.
    await servers[1]!.stop()
    const after: string[] = []
    for (let i = 0; i < 30; i++) after.push(await (await service.fetch('/')).text())
    expect(after.every((x) => x === 'a' || x === 'c')).toBe(true)
    // b comes back on the same port: once Healthy again and its ejection over, it takes traffic.
    const back = await named('b', servers[1]!.port)
    stops.push(back.stop)
    await waitFor('b answering again', async () => (await (await service.fetch('/')).text()) === 'b', WAIT)
  })

  it('sends traffic to its own zone while healthy there, elsewhere when not', async () => {
    // Two agents stand for two zones: the client's zone is that of the first agent's node.
    const [a, b] = cluster.agents
    const zoneOf = new Map([
      [a!.selfUrl, 'zone-a'],
      [b!.selfUrl, 'zone-b'],
    ])
    // Node records carry the zone when the agent is configured with one; here the test writes them.
    for (const agent of cluster.agents) {
      const record = agent.replica.get('node', agent.nodeId)!
      await agent.replica.put('node', { ...record, availabilityZone: zoneOf.get(agent.selfUrl) })
    }
    const local = await named('local')
    const remote = await named('remote')
    stops.push(local.stop, remote.stop)
    const client = createClient({ url: a!.httpUrl })
    await client.api.register({
      url: `http://127.0.0.1:${local.port}`,
      slug: 'zoned',
      nodeUrl: a!.selfUrl,
      check: { type: 'http', intervalMs: 100 },
    })
    await client.api.register({
      url: `http://127.0.0.1:${remote.port}`,
      slug: 'zoned',
      nodeUrl: b!.selfUrl,
      check: { type: 'http', intervalMs: 100 },
    })
    const service = client.service('zoned', { zone: 'zone-a', ejectAfterFailures: 1 })
    stops.push(() => service.close())
    await healthy(service, 2)
    await waitFor('zones known', async () => (await (await service.fetch('/')).text()) === 'local', WAIT)
    for (let i = 0; i < 10; i++) expect(await (await service.fetch('/')).text()).toBe('local')
    await local.stop()
    await waitFor(
      'the local one Unreachable',
      () => service.instances().some((i) => i.status === 'Unreachable'),
      WAIT,
    )
    for (let i = 0; i < 5; i++) expect(await (await service.fetch('/')).text()).toBe('remote')
  })

  it('keeps picking from the last list while its agent restarts, and follows it after', async () => {
    const agent = cluster.agents[1]!
    const server = await named('steady')
    stops.push(server.stop)
    const client = createClient({ url: agent.httpUrl })
    await client.api.register({
      url: `http://127.0.0.1:${server.port}`,
      slug: 'steady',
      check: { type: 'http', intervalMs: 100 },
    })
    const service = client.service('steady')
    stops.push(() => service.close())
    await healthy(service, 1)
    const port = new URL(agent.httpUrl).port
    const restarted = await agent.restart({ httpAddr: { host: '127.0.0.1', port: Number(port) } })
    cluster.agents[1] = restarted
    expect(service.pick()?.url).toBe(`http://127.0.0.1:${server.port}`)
    // A registration on the restarted agent reaches the service through a new watch.
    const other = await named('other')
    stops.push(other.stop)
    await client.api.register({
      url: `http://127.0.0.1:${other.port}`,
      slug: 'steady',
      check: { type: 'http', intervalMs: 100 },
    })
    await healthy(service, 2)
  })

  it('registers itself with a ttl, stays Healthy while it runs, and is gone after close()', async () => {
    const [agent] = cluster.agents
    const client = createClient({ url: agent!.httpUrl })
    const self = await client.register({
      url: 'tcp://127.0.0.1:7',
      slug: 'worker',
      check: { type: 'ttl', ttlMs: 300, intervalMs: 100 },
    })
    const status = async () => (await client.api.instances({ id: self.instance.id }))[0]?.status
    await waitFor('Healthy', async () => (await status()) === 'Healthy', WAIT)
    // Three ttls later it is still Healthy: it renewed itself.
    const until = Date.now() + 900
    while (Date.now() < until) {
      expect(await status()).toBe('Healthy')
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await self.close()
    expect(await client.api.instances({ id: self.instance.id })).toEqual([])
    await expect(client.api.heartbeat(self.instance.id)).rejects.toThrow(RegistryError)
  })

  it('ejects at most maxEjectedShare of the instances, however many fail', async () => {
    const [agent] = cluster.agents
    const client = createClient({ url: agent!.httpUrl })
    // Two that answer, three that answer 500 to every request (their checks are not the client's concern).
    const good = await Promise.all(['a', 'b'].map((n) => named(n)))
    const bad = await Promise.all(['x', 'y', 'z'].map(() => failing()))
    for (const s of [...good, ...bad]) stops.push(s.stop)
    const ids = new Map<string, string>()
    for (const [name, s] of [
      ...good.map((g, i) => [['a', 'b'][i]!, g] as const),
      ...bad.map((b, i) => [['x', 'y', 'z'][i]!, b] as const),
    ]) {
      const instance = await client.api.register({
        url: `http://127.0.0.1:${s.port}`,
        slug: 'capped',
        check: { type: 'none' },
      })
      ids.set(instance.id, name)
    }
    const picked = async (maxEjectedShare: number) => {
      const service = client.service('capped', {
        healthyOnly: false,
        ejectAfterFailures: 1,
        ejectForMs: 60_000,
        maxEjectedShare,
      })
      stops.push(() => service.close())
      await service.ready()
      await waitFor('all five listed', () => service.instances().length === 5, WAIT)
      for (let i = 0; i < 30; i++) await service.fetch('/').catch(() => undefined)
      const names = new Set<string>()
      for (let i = 0; i < 50; i++) names.add(ids.get(service.pick()!.id)!)
      return names
    }
    // Half of five: two ejected at most, so one failing instance still takes picks.
    const capped = await picked(0.5)
    expect(capped.size).toBe(3)
    expect([...capped].filter((n) => n === 'a' || n === 'b').sort()).toEqual(['a', 'b'])
    // With no cap, all three failing ones are left out.
    expect([...(await picked(1))].sort()).toEqual(['a', 'b'])
  })
})
