/**
 * The owner's checks of every kind against real servers on loopback: http (status codes, a server
 * that stops and starts again, one that hangs), ttl (heartbeats), none, and deregistration.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { InstanceProber, type InstanceProberInit } from '../../src/liveness/index.ts'
import { type Check, type Instance, instanceFromRegistration } from '../../src/model/index.ts'
import type { Replica } from '../../src/replica/replica.ts'
import { waitFor } from '../support/wait.ts'
import { ownerReplica, testLogger } from './fixtures.ts'

const SELF = 'http://node-a.test:11337'
const WAIT = { timeoutMs: 5000, everyMs: 10 }

const cleanups: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** An HTTP server on 127.0.0.1 answering with `handler`; `port` pins it (to start it again). */
async function httpServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port = 0,
): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  cleanups.push(() => (server.listening ? close() : undefined))
  return { server, port: (server.address() as { port: number }).port, close }
}

async function register(replica: Replica, url: string, check: Check): Promise<Instance> {
  const instance = instanceFromRegistration({ url, slug: 'svc', nodeUrl: SELF, check }, { now: new Date() })
  await replica.put('instance', instance)
  return instance
}

async function running(replica: Replica, init: InstanceProberInit = {}): Promise<InstanceProber> {
  const p = new InstanceProber(
    { intervalMs: 100, timeoutMs: 500, degradedAfterMs: 5000, ...init },
    { replica, log: testLogger(), selfUrl: SELF },
  )
  p.start()
  cleanups.push(() => p.stop())
  return p
}

const shown = (replica: Replica, id: string) => {
  const i = replica.get('instance', id)
  return i && { status: i.status, details: i.details }
}

describe('http check', () => {
  it('GETs url + path: Healthy while it answers 2xx, Unreachable when it stops, Healthy again when it is back', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const paths: string[] = []
    const up = await httpServer((req, res) => {
      paths.push(req.url!)
      res.end('ok')
    })
    const inst = await register(replica, `http://127.0.0.1:${up.port}/api`, { type: 'http', path: '/health' })
    await running(replica)
    await waitFor('Healthy', () => shown(replica, inst.id)?.status === 'Healthy', WAIT)
    expect(paths[0]).toBe('/api/health')
    await up.close()
    await waitFor('Unreachable', () => shown(replica, inst.id)?.status === 'Unreachable', WAIT)
    expect(shown(replica, inst.id)?.details).toMatch(/ECONNREFUSED/)
    await httpServer((_req, res) => res.end('ok'), up.port)
    await waitFor('Healthy again', () => shown(replica, inst.id)?.status === 'Healthy', WAIT)
  })

  it('is Degraded on 429, Unreachable on another code with the code in details, and after the timeout on a hung server', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const busy = await httpServer((_req, res) => {
      res.statusCode = 429
      res.end()
    })
    const failing = await httpServer((_req, res) => {
      res.statusCode = 503
      res.end()
    })
    const hung = await httpServer(() => undefined)
    const a = await register(replica, `http://127.0.0.1:${busy.port}`, { type: 'http' })
    const b = await register(replica, `http://127.0.0.1:${failing.port}`, { type: 'http' })
    const c = await register(replica, `http://127.0.0.1:${hung.port}`, { type: 'http', timeoutMs: 300 })
    await running(replica)
    await waitFor(
      'all three checked',
      () => [a, b, c].every((i) => shown(replica, i.id)?.status !== 'Unknown'),
      WAIT,
    )
    expect(shown(replica, a.id)).toEqual({ status: 'Degraded', details: 'HTTP 429: too many requests' })
    expect(shown(replica, b.id)).toEqual({ status: 'Unreachable', details: 'HTTP 503' })
    expect(shown(replica, c.id)).toEqual({ status: 'Unreachable', details: 'no answer within 300 ms' })
  })

  it('marks an instance whose URL is not http Error, without connecting', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const inst = await register(replica, 'grpc://127.0.0.1:9', { type: 'http' })
    await running(replica)
    await waitFor('Error', () => shown(replica, inst.id)?.status === 'Error', WAIT)
    expect(shown(replica, inst.id)?.details).toBe(
      'cannot check over http: grpc://127.0.0.1:9 is not an http or https URL',
    )
  })
})

describe('ttl and none checks', () => {
  it('keeps a renewed ttl instance Healthy, turns it Unreachable within ttl plus an interval without heartbeats', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const inst = await register(replica, 'tcp://127.0.0.1:7', { type: 'ttl', ttlMs: 400, intervalMs: 100 })
    const p = await running(replica)
    await waitFor('Healthy from the registration', () => shown(replica, inst.id)?.status === 'Healthy', WAIT)
    // Renewed every 150 ms for a second and a half: never Unreachable.
    const statuses = new Set<string>()
    for (let i = 0; i < 10; i++) {
      expect(p.renew(inst.id)).toBe('renewed')
      await new Promise((resolve) => setTimeout(resolve, 150))
      statuses.add(shown(replica, inst.id)!.status)
    }
    expect([...statuses]).toEqual(['Healthy'])
    const lastRenewal = Date.now()
    await waitFor('Unreachable', () => shown(replica, inst.id)?.status === 'Unreachable', WAIT)
    expect(Date.now() - lastRenewal).toBeLessThan(400 + 100 + 300)
    expect(shown(replica, inst.id)?.details).toBe('no heartbeat within the ttl of 400 ms')
    // A heartbeat carrying a status brings it back with that status at once.
    p.renew(inst.id, { status: 'Degraded', details: 'queue backing up' })
    await waitFor('Degraded', () => shown(replica, inst.id)?.status === 'Degraded', WAIT)
    expect(shown(replica, inst.id)?.details).toBe('queue backing up')
  })

  it('shows what heartbeats say for a none check, and Unknown before the first', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const inst = await register(replica, 'tcp://127.0.0.1:7', { type: 'none' })
    // A tcp-checked neighbour is the clock: three of its checks are three intervals.
    await register(replica, 'tcp://127.0.0.1:9', { type: 'tcp' })
    const p = await running(replica)
    await waitFor('three check rounds', () => p.stats.probes >= 3, WAIT)
    expect(shown(replica, inst.id)?.status).toBe('Unknown')
    p.renew(inst.id, { status: 'Healthy' })
    await waitFor('Healthy', () => shown(replica, inst.id)?.status === 'Healthy', WAIT)
    expect(p.renew('inst_0000000000000000')).toBe('unknown')
  })

  it('takes no heartbeat for an instance it does not own', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const other = instanceFromRegistration(
      { url: 'tcp://127.0.0.1:7', nodeUrl: 'http://node-b.test:11337', check: { type: 'ttl' } },
      { now: new Date() },
    )
    await replica.put('instance', other)
    const p = await running(replica)
    expect(p.renew(other.id)).toBe('not-owned')
  })
})

describe('deregistration', () => {
  it('deletes an instance down for its deregisterAfterMs without a break, and not one that came back in time', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const flapping = await httpServer((_req, res) => res.end('ok'))
    const dead = await register(replica, 'http://127.0.0.1:9', { type: 'tcp', deregisterAfterMs: 600 })
    const flaps = await register(replica, `http://127.0.0.1:${flapping.port}`, {
      type: 'tcp',
      deregisterAfterMs: 600,
    })
    const p = await running(replica)
    const started = Date.now()
    const deregistered: string[] = []
    p.on('deregister', (instance) => deregistered.push(instance.id))
    await waitFor('the dead one deleted', () => replica.get('instance', dead.id) === undefined, WAIT)
    expect(Date.now() - started).toBeGreaterThanOrEqual(600)
    expect(replica.entry(`instance/${dead.id}`)?.value).toBeNull()
    expect(deregistered).toEqual([dead.id])
    expect(p.stats.deregistered).toBe(1)
    // Down for less than its deregisterAfterMs, then back: kept.
    await flapping.close()
    await waitFor('the other down', () => shown(replica, flaps.id)?.status === 'Unreachable', WAIT)
    await httpServer((_req, res) => res.end('ok'), flapping.port)
    await waitFor('the other back', () => shown(replica, flaps.id)?.status === 'Healthy', WAIT)
    expect(replica.get('instance', flaps.id)).toBeDefined()
    expect(p.stats.deregistered).toBe(1)
  })

  it('never deletes with deregisterAfterMs 0', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const inst = await register(replica, 'http://127.0.0.1:9', { type: 'tcp', deregisterAfterMs: 0 })
    const p = await running(replica, { deregisterAfterMs: 1 })
    await waitFor('ten checks', () => p.stats.probes >= 10, WAIT)
    expect(replica.get('instance', inst.id)?.status).toBe('Unreachable')
  })
})
