import { createServer, type LookupFunction, type Server } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  InitError,
  type InstanceProbeResult,
  InstanceProber,
  type InstanceProberComponents,
  type InstanceProberInit,
  type InstanceStatusChange,
  ProbeNetworks,
  probeTargetOf,
} from '../../src/liveness/index.ts'
import { type Instance, instanceFromRegistration, normaliseNodeUrl } from '../../src/model/index.ts'
import { LevelStore } from '../../src/replica/level-store.ts'
import type { Replica } from '../../src/replica/replica.ts'
import { openReplica, withTempDir } from '../replica/fixtures.ts'
import { waitFor } from '../support/wait.ts'
import { ownerReplica, testLogger } from './fixtures.ts'

const SELF = 'http://node-a.test:11337'
const OTHER = 'http://node-b.test:11337'
const WAIT = { timeoutMs: 5000, everyMs: 10 }

const cleanups: Array<() => Promise<unknown> | unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function listening(): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const server = createServer((socket) => socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  let closed: Promise<void> | undefined
  const close = () => {
    closed ??= new Promise<void>((resolve) => server.close(() => resolve()))
    return closed
  }
  cleanups.push(close)
  return { server, port, close }
}

async function register(replica: Replica, url: string, nodeUrl = SELF): Promise<Instance> {
  const instance = instanceFromRegistration({ url, slug: 'svc', nodeUrl }, { now: new Date() })
  await replica.put('instance', instance)
  return instance
}

function prober(
  replica: Replica,
  init: InstanceProberInit = {},
  components: Partial<InstanceProberComponents> = {},
) {
  const p = new InstanceProber(
    { intervalMs: 50, timeoutMs: 1000, degradedAfterMs: 5000, ...init },
    { replica, log: testLogger(), selfUrl: SELF, ...components },
  )
  const probes: InstanceProbeResult[] = []
  const statuses: InstanceStatusChange[] = []
  p.on('probe', (r) => probes.push(r))
  p.on('status', (s) => statuses.push(s))
  cleanups.push(() => p.stop())
  return { p, probes, statuses }
}

/** Counts local instance writes to the replica (what the agent would gossip). */
function countWrites(replica: Replica): { count: number } {
  const counter = { count: 0 }
  replica.on('change', (changes, source) => {
    if (source === 'local') counter.count += changes.filter((c) => c.kind === 'instance').length
  })
  return counter
}

/** A name resolver that holds every lookup until `release` (name → 127.0.0.1). */
function heldLookup() {
  const held: Array<() => void> = []
  const lookup = ((_host: string, options: { all?: boolean }, callback: (...a: unknown[]) => void) => {
    held.push(() =>
      options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4),
    )
  }) as unknown as LookupFunction
  return {
    lookup,
    held,
    release: () => {
      for (const answer of held.splice(0)) answer()
    },
  }
}

const status = (replica: Replica, id: string) => replica.get('instance', id)?.status

describe('InstanceProber', () => {
  it('marks an instance backed by a listening socket Healthy, and Unreachable once it closes', async () => {
    await withTempDir(async (dir) => {
      const replica = await openReplica('node-a', {
        store: new LevelStore({ path: join(dir, 'db') }),
        now: () => Date.now(),
      })
      cleanups.push(() => replica.close())
      await replica.put('node', { id: 'node-a', url: SELF, lastHeartbeat: new Date().toISOString() })
      const server = await listening()
      const inst = await register(replica, `http://127.0.0.1:${server.port}`)
      const { p, statuses } = prober(replica)
      p.start()
      p.start()
      expect(p.tracked).toBe(1)

      await waitFor('Healthy', () => status(replica, inst.id) === 'Healthy', WAIT)
      const healthy = replica.get('instance', inst.id)!
      expect(healthy.details).toBeUndefined()
      expect(Date.parse(healthy.lastHeartbeat!)).toBeGreaterThanOrEqual(Date.parse(inst.lastHeartbeat!))
      expect({ ...healthy, lastHeartbeat: inst.lastHeartbeat }).toEqual({ ...inst, status: 'Healthy' })

      await server.close()
      await waitFor('Unreachable', () => status(replica, inst.id) === 'Unreachable', WAIT)
      expect(replica.get('instance', inst.id)!.details).toBe(`connect ECONNREFUSED 127.0.0.1:${server.port}`)
      expect(statuses.map((s) => [s.previous, s.status])).toEqual([
        ['Unknown', 'Healthy'],
        ['Healthy', 'Unreachable'],
      ])
    })
  })

  it('probes only inside OB_PROBE_NETWORKS: an address outside is marked Error, not connected to', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const server = await listening()
    let connections = 0
    server.server.on('connection', () => connections++)
    const inside = await register(replica, `http://127.0.0.1:${server.port}`)
    const outside = await register(replica, `http://127.0.1.7:${server.port}`)
    // A name that resolves outside is not connected to either.
    const named = await register(replica, `http://named.test:${server.port}`)
    const lookup = ((_host: string, options: { all?: boolean }, callback: (...a: unknown[]) => void) =>
      options.all
        ? callback(null, [{ address: '127.0.1.8', family: 4 }])
        : callback(null, '127.0.1.8', 4)) as unknown as LookupFunction
    const { p } = prober(replica, {}, { networks: new ProbeNetworks(['127.0.0.0/24']), lookup })
    p.start()
    await waitFor(
      'all three settled',
      () => [inside, outside, named].every((i) => status(replica, i.id) !== 'Unknown'),
      WAIT,
    )
    expect(status(replica, inside.id)).toBe('Healthy')
    expect(replica.get('instance', outside.id)).toMatchObject({
      status: 'Error',
      details: 'not probed: 127.0.1.7 is outside OB_PROBE_NETWORKS (127.0.0.0/24)',
    })
    expect(replica.get('instance', named.id)).toMatchObject({
      status: 'Unreachable',
      details: 'not probed: named.test resolves only outside OB_PROBE_NETWORKS (127.0.0.0/24)',
    })
    expect(connections).toBeGreaterThan(0)
    expect(() => new ProbeNetworks(['10.0.0.0/33'])).toThrow('"10.0.0.0/33" is not a network in CIDR form')
  })

  it('probes only instances whose nodeUrl is this node, and follows re-homing', async () => {
    expect(normaliseNodeUrl('HTTP://Node-A.test:11337/')).toBe(normaliseNodeUrl(SELF))
    expect(normaliseNodeUrl('http://node-a.test:80/')).toBe('http://node-a.test')
    const replica = await ownerReplica('node-a', SELF)
    const server = await listening()
    const url = `http://127.0.0.1:${server.port}`
    const theirs = await register(replica, `${url}/theirs`, OTHER)
    const { p, probes } = prober(replica)
    const writes = countWrites(replica)
    p.start()
    // Registered after start, with our URL spelled differently.
    const ours = await register(replica, `${url}/ours`, 'HTTP://Node-A.test:11337/')
    const moving = await register(replica, `${url}/moving`)
    for (const inst of [ours, moving]) {
      await waitFor(`${inst.id} Healthy`, () => status(replica, inst.id) === 'Healthy', WAIT)
    }
    expect(probes.some((r) => r.id === theirs.id)).toBe(false)
    expect(replica.get('instance', theirs.id)).toEqual(theirs)

    // Moved to another node: no longer probed or written here (the other instance's probes tick on).
    await replica.put('instance', { ...replica.get('instance', moving.id)!, nodeUrl: OTHER })
    expect(p.tracked).toBe(1)
    const before = { probes: probes.length, writes: writes.count }
    await waitFor('four more probes', () => probes.length >= before.probes + 4, WAIT)
    expect(probes.slice(before.probes).every((r) => r.id === ours.id)).toBe(true)
    expect(writes.count).toBe(before.writes)
    expect(p.stats.probes).toBe(probes.length)
  })

  it('writes nothing while the status stays the same, then refreshes after refreshMs', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const server = await listening()
    const inst = await register(replica, `http://127.0.0.1:${server.port}`)
    const { p, probes } = prober(replica, { refreshMs: 1000 })
    const writes = countWrites(replica)
    const reasons: string[] = []
    p.on('write', (_instance, reason) => reasons.push(reason))
    p.start()
    await waitFor('Healthy', () => status(replica, inst.id) === 'Healthy', WAIT)
    const first = replica.get('instance', inst.id)!
    const after = probes.length
    await waitFor('five more probes', () => probes.length >= after + 5, WAIT)
    expect(writes.count).toBe(1)
    expect(p.stats.settled.unchanged).toBeGreaterThanOrEqual(5)

    await waitFor('a refresh', () => reasons.includes('refresh'), WAIT)
    const refreshed = replica.get('instance', inst.id)!
    expect(reasons).toEqual(['changed', 'refresh'])
    expect(writes.count).toBe(2)
    expect(Date.parse(refreshed.lastHeartbeat!) - Date.parse(first.lastHeartbeat!)).toBeGreaterThanOrEqual(
      600,
    )
    expect({ ...refreshed, lastHeartbeat: '' }).toEqual({ ...first, lastHeartbeat: '' })
    expect(p.stats.writes).toBe(2)
  })

  it('cancels the probe of an instance deleted while it is in flight, and never writes it back', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const server = await listening()
    const dns = heldLookup()
    const held = await register(replica, `http://held.test:${server.port}`)
    const ticker = await register(replica, `http://127.0.0.1:${server.port}`)
    const { p, probes } = prober(replica, {}, { lookup: dns.lookup })
    p.start()
    await waitFor('the probe in flight', () => dns.held.length === 1, WAIT)
    await replica.remove('instance', held.id)
    expect(p.tracked).toBe(1)
    await waitFor('the other Healthy', () => status(replica, ticker.id) === 'Healthy', WAIT)
    const writes = countWrites(replica)
    dns.release() // the cancelled connect may now resolve and connect: nothing must come of it
    const after = probes.length
    await waitFor('four more probes', () => probes.length >= after + 4, WAIT)
    expect(probes.some((r) => r.id === held.id)).toBe(false)
    expect(probes.slice(after).every((r) => r.id === ticker.id)).toBe(true)
    expect(replica.get('instance', held.id)).toBeUndefined()
    expect(writes.count).toBe(0)
  })

  it('deletes again an instance whose delete merges between the re-read and the write', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const server = await listening()
    const inst = await register(replica, `http://127.0.0.1:${server.port}`)
    const { p } = prober(replica)
    // Queued before the prober's re-read, merged after it and before its write.
    p.once('probe', () => void replica.remove('instance', inst.id))
    p.start()
    await waitFor('the racing status write dropped', () => p.stats.dropped === 1, WAIT)
    await waitFor('the instance forgotten', () => p.tracked === 0, WAIT)
    expect(replica.get('instance', inst.id)).toBeUndefined()
    expect(replica.entry(`instance/${inst.id}`)?.value).toBeNull()
    expect(p.stats.writes).toBe(0)
  })

  it('keeps at most `concurrency` probes in flight, queueing the rest', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const server = await listening()
    const dns = heldLookup()
    const { p } = prober(replica, { concurrency: 1 }, { lookup: dns.lookup })
    p.start()
    const a = await register(replica, `http://a.test:${server.port}`)
    const b = await register(replica, `http://b.test:${server.port}`)
    await waitFor('one probe held', () => dns.held.length === 1, WAIT)
    expect(p.inFlight).toBe(1)
    dns.release()
    await waitFor('the queued probe started', () => dns.held.length === 1, WAIT)
    expect(p.inFlight).toBe(1)
    dns.release()
    for (const inst of [a, b]) {
      await waitFor(`${inst.id} Healthy`, () => status(replica, inst.id) === 'Healthy', WAIT)
    }
  })

  it('is Degraded when the connect takes longer than degradedAfterMs', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const server = await listening()
    const inst = await register(replica, `http://127.0.0.1:${server.port}`)
    // A stepping clock: every connect "takes" 1000 ms, whatever the machine does.
    let t = 0
    const stepping = () => {
      t += 1000
      return t
    }
    const { p, probes } = prober(replica, { degradedAfterMs: 500 }, { now: stepping })
    p.start()
    await waitFor('Degraded', () => status(replica, inst.id) === 'Degraded', WAIT)
    expect(replica.get('instance', inst.id)!.details).toBe('TCP connect took longer than 500 ms')
    expect(probes[0]).toMatchObject({ status: 'Degraded', ms: 1000 })
  })

  it('is Unreachable when nothing answers within timeoutMs, Error without a usable port', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const dns = heldLookup()
    const silent = await register(replica, 'http://silent.test:5001')
    const portless = await register(replica, 'tcp://127.0.0.1')
    const grpc = instanceFromRegistration({ url: 'grpc://[::1]', slug: 'svc' }, { now: new Date() })
    expect(probeTargetOf(grpc)).toEqual({ host: '::1', port: 443 })
    const { p } = prober(replica, { timeoutMs: 100 }, { lookup: dns.lookup })
    p.start()
    await waitFor('Unreachable', () => status(replica, silent.id) === 'Unreachable', WAIT)
    expect(replica.get('instance', silent.id)!.details).toBe('no answer within 100 ms')
    await waitFor('Error', () => status(replica, portless.id) === 'Error', WAIT)
    expect(replica.get('instance', portless.id)!.details).toMatch(
      /no port, and scheme "tcp" has no default port/,
    )
  })

  it('stop() leaves no timers, sockets or state behind', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const server = await listening()
    const dns = heldLookup()
    const resources = () =>
      process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r.startsWith('TCP')).length
    const baseline = resources()
    // Found by the initial scan: first probes spread over the 10 s interval (timers pending).
    for (let i = 0; i < 3; i++) await register(replica, `http://127.0.0.1:${server.port}/${i}`)
    const { p } = prober(replica, { intervalMs: 10_000 }, { lookup: dns.lookup })
    p.start()
    // Registered after start: probed at once, and held in name resolution.
    await register(replica, `http://held.test:${server.port}`)
    expect(p.tracked).toBe(4)
    await waitFor('the held probe in flight', () => p.inFlight === 1, WAIT)
    expect(resources()).toBeGreaterThan(baseline)
    await p.stop()
    expect(p.isStarted).toBe(false)
    expect(p.tracked).toBe(0)
    expect(p.inFlight).toBe(0)
    expect(resources()).toBe(baseline)
    expect(replica.listenerCount('change')).toBe(0)
  })

  it('rejects bad options with InitError naming the option', async () => {
    const replica = await ownerReplica('node-a', SELF)
    const make = (init: InstanceProberInit) =>
      new InstanceProber(init, { replica, log: testLogger(), selfUrl: SELF })
    expect(() => make({ intervalMs: 0 })).toThrow(InitError)
    expect(() => make({ degradedAfterMs: -1 })).toThrow(/degradedAfterMs/)
    expect(() => make({ concurrency: 1.5 })).toThrow(/concurrency/)
    expect(make({}).intervalMs).toBe(5000)
  })
})
