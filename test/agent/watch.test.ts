/**
 * A watch on one agent of a real 3-agent cluster (in this process) sees what is written through
 * another: a registration, its owner's status write, a delete; and nothing for another slug.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type TestCluster, waitMeshed } from '../support/cluster.ts'
import { waitFor } from '../support/wait.ts'

describe('a watch across the cluster', () => {
  let cluster: TestCluster
  beforeAll(async () => {
    cluster = await startCluster(3, { probeIntervalMs: 200 })
    await waitMeshed(cluster.agents)
    // Every agent holds every node record: an owner's status shows only once its record is known.
    await waitFor('every node record everywhere', () =>
      cluster.agents.every((x) => x.replica.nodes().length === 3),
    )
  }, 60_000)
  afterAll(() => cluster?.stop())

  it('sees a write, a status change and a delete made on another agent, and nothing else', async () => {
    const [a, , c] = cluster.agents
    const controller = new AbortController()
    const response = await fetch(`${a!.httpUrl}/registry-svc/instances/watch?slug=orders`, {
      signal: controller.signal,
    })
    const events: EventSourceMessage[] = []
    const parser = createParser({ onEvent: (event) => events.push(event) })
    const reading = (async () => {
      const decoder = new TextDecoder()
      try {
        for await (const chunk of response.body!)
          parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }))
      } catch {
        // aborted
      }
    })()
    const statuses = () =>
      events.map((e) =>
        (JSON.parse(e.data) as { instances: Array<{ status: string }> }).instances.map((i) => i.status),
      )
    try {
      await waitFor('the first event', () => events.length === 1)
      expect(statuses()).toEqual([[]])
      const put = (slug: string, url: string) =>
        c!.http.inject({ method: 'PUT', url: '/registry-svc/instance', payload: { url, slug } })
      await put('billing', 'http://127.0.0.1:9')
      const id = (await put('orders', 'http://127.0.0.1:9/orders')).json().instance.id as string
      // Registered (Unknown), then its owner (agent c) finds nothing listening: Unreachable. The two
      // may reach agent a in one gossip message (the owner probes at once), and then in one event.
      await waitFor('the write and the status change', () => statuses().some((s) => s[0] === 'Unreachable'))
      const seen = statuses().filter((s) => s[0] !== 'Unknown')
      expect(seen).toEqual([[], ['Unreachable']])
      await c!.http.inject({ method: 'DELETE', url: `/registry-svc/instance/${id}` })
      await waitFor('the delete', () => statuses().at(-1)?.length === 0)
      expect(statuses().filter((s) => s[0] !== 'Unknown')).toEqual([[], ['Unreachable'], []])
      // Nothing else: at most the one Unknown before, and no event for the other slug.
      expect(statuses().length).toBeLessThanOrEqual(4)
    } finally {
      controller.abort()
      await reading
    }
  })
})
