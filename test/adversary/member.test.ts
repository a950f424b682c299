/**
 * A member with the cluster key attacks a real 3-agent cluster (issue "A misbehaving member cannot
 * corrupt, fake or starve the cluster"); each test runs one attack and checks that the cluster holds.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeBeat } from '../../src/liveness/beat.ts'
import type { Instance } from '../../src/model/index.ts'
import { BEATS_PROTOCOL, CHANGES_TOPIC, MAX_BEAT_BYTES } from '../../src/model/wire.ts'
import { FrameChannel } from '../../src/p2p/frame-channel.ts'
import { GOSSIP_SCORE_THRESHOLDS } from '../../src/p2p/libp2p-node.ts'
import { nodeSigner } from '../../src/replica/node-signature.ts'
import { MAX_COUNTER } from '../../src/replica/version.ts'
import { testLogger } from '../liveness/fixtures.ts'
import { definition } from '../replica/fixtures.ts'
import {
  startCluster,
  type TestAgent,
  type TestCluster,
  waitConverged,
  waitMeshed,
} from '../support/cluster.ts'
import { type AgentProcess, startAgentUp } from '../support/process-agent.ts'
import { namedStep, waitFor } from '../support/wait.ts'
import { type Attacker, CLUSTER_KEY, instanceChange, startAttacker } from './attacker.ts'

const MAX_ENTITIES = 2_000
/**
 * An idle agent uses about 100 MB of RSS; a flood may add its working set, not its volume: 148-170 MB
 * measured after it when this test runs alone, 257-287 MB when it follows the cluster tests above (the
 * agent gets less CPU, so more of the flood waits in buffers at once). A flood held in memory would be
 * far past this (20,000 messages of 200 changes).
 */
const RSS_BOUND_MB = 320

/** A lookup loop for a child process: prints each lookup's time, ms, until it is killed. */
const LOOKUP_LOOP = `
const url = process.argv[1]
for (;;) {
  const started = performance.now()
  await (await fetch(url)).arrayBuffer()
  console.log((performance.now() - started).toFixed(2))
}`

/** `count` raw TCP connections that read (and drop) whatever they get, each noting when it closes. */
function openSockets(host: string, port: number, count: number): Array<{ socket: Socket; closed: boolean }> {
  return Array.from({ length: count }, () => {
    const socket = connect(port, host)
    const entry = { socket, closed: false }
    socket.on('error', () => undefined)
    socket.on('close', () => {
      entry.closed = true
    })
    socket.resume()
    return entry
  })
}

/** Which of an agent's parts are still up: the first unit in stop order still started is the one stuck. */
function stopState(agent: TestAgent): string {
  const units = {
    discovery: agent.discovery,
    reaper: agent.reaper,
    prober: agent.prober,
    heartbeat: agent.heartbeat,
    swim: agent.swim,
    swimDatagrams: agent.swimDatagrams,
    detector: agent.detector,
    beats: agent.beats,
    sync: agent.sync,
    gossip: agent.gossip,
  }
  const started = Object.entries(units)
    .filter(([, unit]) => unit?.isStarted)
    .map(([name]) => name)
  return JSON.stringify({
    httpListening: agent.http.server.listening,
    unitsStarted: started,
    libp2p: agent.libp2p.status,
  })
}

/** The gossipsub score an agent gives the attacker (gossipsub's API, not libp2p's PubSub interface). */
function scoreOf(agent: TestAgent, attacker: Attacker): number {
  const pubsub = agent.libp2p.services.pubsub as unknown as { getScore(peer: string): number }
  return pubsub.getScore(attacker.node.peerId.toString())
}

describe('a misbehaving member of the cluster', () => {
  let cluster: TestCluster
  let attacker: Attacker

  beforeAll(async () => {
    cluster = await startCluster(3, { clusterKey: CLUSTER_KEY, maxEntities: MAX_ENTITIES })
    await waitMeshed(cluster.agents)
    attacker = await startAttacker()
    await attacker.join(cluster.agents)
  }, 60_000)

  // A stop that hung here once in a few CI runs (an agent's, never found why): each step says what is
  // still running every 10 s, and the hook gives up on one after 20 s rather than fail the file.
  afterAll(async () => {
    const limits = { giveUpAfterMs: 20_000 }
    await namedStep('attacker.stop', async () => attacker?.stop(), limits)
    for (const agent of cluster?.agents ?? [])
      await namedStep(`${agent.nodeId}.stop`, () => agent.stop(), {
        ...limits,
        detail: () => stopState(agent),
      })
    await namedStep('cluster.stop', async () => cluster?.stop(), limits)
  }, 120_000)

  it('cannot stop replication with one version whose counter is spent, 4.9 s ahead', async () => {
    const [a, b, c] = cluster.agents
    await attacker.publishChanges([
      {
        kind: 'definition',
        id: 'bait',
        version: { ts: Date.now() + 4_900, c: MAX_COUNTER, node: 'attacker' },
        value: definition('bait'),
      },
    ])
    await waitFor('the bait on every agent', () =>
      cluster.agents.every((x) => x.replica.get('definition', 'bait')),
    )
    // Every agent's clock has now observed the spent counter; their next writes must still be accepted.
    const after = await Promise.all(
      [a!, b!, c!].map((x, i) => x.replica.put('definition', definition(`after-${i}`))),
    )
    for (const change of after) expect(change.version.c).toBeLessThan(MAX_COUNTER)
    await waitFor('the writes made after it on every agent', () =>
      cluster.agents.every((x) => [0, 1, 2].every((i) => x.replica.get('definition', `after-${i}`))),
    )
    await waitConverged(cluster.agents)
    for (const x of cluster.agents) expect(x.gossip.stats.outcomes['rejected-drift'] ?? 0).toBe(0)
  })

  it('cannot rewrite another node’s record, unsigned or signed with its own key', async () => {
    const victim = cluster.agents[1]!
    const held = victim.replica.get('node', victim.nodeId)!
    const forged = { ...held, url: 'http://127.6.6.6:11337', multiaddrs: ['/ip4/127.6.6.6/tcp/11338'] }
    const version = { ts: Date.now() + 4_000, c: 0, node: victim.nodeId }
    const { signature: _dropped, ...unsigned } = forged as typeof forged & { signature?: string }
    const ownKey = nodeSigner(victim.nodeId, attacker.node.peerId.toString(), attacker.key.raw)
    const signedByAttacker = ownKey.sign({ ...unsigned, peerId: attacker.node.peerId.toString() }, version)
    await attacker.publishChanges([{ kind: 'node', id: victim.nodeId, version, value: unsigned }])
    await attacker.publishChanges([
      { kind: 'node', id: victim.nodeId, version: { ...version, c: 1 }, value: signedByAttacker },
    ])
    // Tampered: the victim's signature over other content.
    await attacker.publishChanges([
      { kind: 'node', id: victim.nodeId, version: { ...version, c: 2 }, value: forged },
    ])
    await waitFor('every agent to have refused the three forgeries', () =>
      cluster.agents.every((x) => {
        const o = x.gossip.stats.outcomes
        return (o.stale ?? 0) + (o['rejected-owner'] ?? 0) + (o['rejected-signature'] ?? 0) >= 3
      }),
    )
    for (const x of cluster.agents) {
      expect(x.replica.get('node', victim.nodeId)?.url).toBe(held.url)
      expect(x.replica.get('node', victim.nodeId)?.peerId).toBe(victim.libp2p.peerId.toString())
    }
  })

  it('cannot fake an instance’s health: no forged status shows, and the owner’s probe result stands', async () => {
    const owner = cluster.agents[1]!
    // Nothing listens there: the owner's probe finds it Unreachable.
    const registered = await owner.http.inject({
      method: 'PUT',
      url: '/registry-svc/instance',
      payload: { url: 'http://127.0.66.1:9', slug: 'victim-svc' },
    })
    expect(registered.statusCode).toBe(201)
    const { instance } = registered.json() as { instance: Instance }
    const statusOn = (x: TestAgent) => x.replica.get('instance', instance.id)?.status
    await waitFor('the owner’s probe result on every agent', () =>
      cluster.agents.every((x) => statusOn(x) === 'Unreachable'),
    )
    const stored = owner.replica.entry(`instance/${instance.id}`)!
    const basedOn = stored.basedOn!
    // Clocks may still run ahead from an earlier attack; forge only once wall time is past the stored
    // status, so the forgeries are newer than it.
    await waitFor('wall time past the stored status', () => Date.now() > stored.version.ts)
    const healthy = { ...instance, status: 'Healthy', details: 'forged' }
    const at = (c: number) => ({ ts: Date.now() + 1_000, c, node: owner.nodeId })
    const ownKey = nodeSigner(owner.nodeId, attacker.node.peerId.toString(), attacker.key.raw)
    const forgeries = [
      // Status writes in the owner's name: unsigned, and signed with the attacker's key.
      { kind: 'instance', id: instance.id, version: at(1), basedOn, value: healthy },
      {
        kind: 'instance',
        id: instance.id,
        version: at(2),
        basedOn,
        value: ownKey.signStatus(healthy as Instance, at(2), basedOn),
      },
      // A status write in its own name (it owns no node URL: it has no record).
      { kind: 'instance', id: instance.id, version: { ...at(3), node: 'attacker' }, basedOn, value: healthy },
      // A registration (plain write) that carries a status; it wins over the status writes above.
      { kind: 'instance', id: instance.id, version: { ...at(0), node: 'attacker' }, value: healthy },
    ]
    let healthySeen = false
    const watch = setInterval(() => {
      if (cluster.agents.some((x) => statusOn(x) === 'Healthy')) healthySeen = true
    }, 5)
    try {
      for (const forged of forgeries) {
        await attacker.publishChanges([forged])
        await waitFor('the forgery merged on every agent (stored as it came)', () =>
          cluster.agents.every((x) => {
            const v = x.replica.entry(`instance/${instance.id}`)?.version
            return v !== undefined && v.ts === forged.version.ts && v.c >= forged.version.c
          }),
        )
        for (const x of cluster.agents) expect(statusOn(x)).not.toBe('Healthy')
      }
      // The owner sees Unknown where its probe said Unreachable, and writes its result again.
      await waitFor('the owner’s signed probe result back on every agent', () =>
        cluster.agents.every((x) => statusOn(x) === 'Unreachable'),
      )
      await waitConverged(cluster.agents)
    } finally {
      clearInterval(watch)
    }
    expect(healthySeen).toBe(false)
  })

  it('cannot make an agent hold more than OB_MAX_ENTITIES of a kind, by anti-entropy or by gossip', async () => {
    const [a, b] = cluster.agents
    const now = Date.now()
    await attacker.replica.apply(
      Array.from({ length: 3 * MAX_ENTITIES + 500 }, (_, n) =>
        instanceChange(n, { ts: now, c: 0, node: 'attacker' }),
      ),
    )
    // `busy` (every session slot taken, say by the agents' own rounds on a loaded machine) is a
    // refusal to come back later: it does. The agent may also have pulled from the attacker in a
    // round of its own meanwhile; either way it holds no more than its limit and refused the rest.
    await waitFor('a session the agent accepts', async () => {
      const r = await attacker.push(a!)
      return !(r.outcome === 'failed' && r.reason === 'busy')
    })
    expect(a!.replica.counts().instances).toBeLessThanOrEqual(MAX_ENTITIES)
    await waitFor(
      'the agent to have refused the entries past its limit',
      () => a!.sync.stats.failures['too-many-entries'] > 0 || a!.sync.stats.applied['rejected-quota'] > 0,
    )
    // Gossip: batches of fresh instances, far more than the limit.
    for (let at = 0; at < 4_000; at += 200) {
      await attacker.publishChanges(
        Array.from({ length: 200 }, (_, k) =>
          instanceChange(100_000 + at + k, { ts: Date.now(), c: 0, node: 'attacker' }),
        ),
      )
    }
    await waitFor(
      'the flood merged or refused on agent b',
      () => (b!.gossip.stats.outcomes['rejected-quota'] ?? 0) > 0,
    )
    for (const x of cluster.agents) expect(x.replica.counts().instances).toBeLessThanOrEqual(MAX_ENTITIES)
  })

  it('is graylisted after a few invalid messages, and what it sends next is not merged', async () => {
    // Ten at least: the invalid-message count decays by 0.9 a second, and ten keep the score under the
    // graylist threshold for about 12 s. It keeps sending them until every agent has it graylisted (one
    // that already ignores it for flooding in the test above counts none until that fades).
    // A fresh member: the one above may be graylisted already, or cut off, by the floods of the
    // tests before (that it is, is what the quota test shows).
    const attacker = await startAttacker()
    await attacker.join(cluster.agents)
    let sent = 0
    const invalid = () => attacker.publish(`{"changes": "not a list ${sent++}"}`)
    for (let i = 0; i < 10; i++) await invalid()
    await waitFor('the attacker graylisted on every agent', async () => {
      if (cluster.agents.every((x) => scoreOf(x, attacker) < GOSSIP_SCORE_THRESHOLDS.graylistThreshold))
        return true
      await invalid()
      return false
    })
    // Gossipsub keeps accepting a peer whose score was good for up to 1 s after it last checked it
    // (its accept-from whitelist: ACCEPT_FROM_WHITELIST_DURATION_MS). Past that window the graylist holds.
    const graylistedAt = Date.now()
    await waitFor('gossipsub’s accept-from window to pass', () => Date.now() - graylistedAt > 1_100)
    await attacker.publishChanges([
      {
        kind: 'definition',
        id: 'from-graylisted',
        version: { ts: Date.now(), c: 0, node: 'attacker' },
        value: definition('from-graylisted'),
      },
    ])
    // A write from a member in good standing gets through meanwhile: once it is everywhere, so would
    // the attacker's have been.
    await cluster.agents[1]!.replica.put('definition', definition('from-a-member'))
    await waitFor('the member write everywhere', () =>
      cluster.agents.every((x) => x.replica.get('definition', 'from-a-member')),
    )
    for (const x of cluster.agents) expect(x.replica.get('definition', 'from-graylisted')).toBeUndefined()
    await attacker.stop()
  })

  it('cannot hold the HTTP port with slowloris connections', async () => {
    const [a] = cluster.agents
    const { hostname, port } = new URL(a!.httpUrl)
    const sockets = openSockets(hostname, Number(port), 200)
    for (const { socket } of sockets) socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n')
    const trickle = setInterval(() => {
      for (const { socket } of sockets) if (!socket.destroyed) socket.write('X-Slow: 1\r\n')
    }, 1_000)
    try {
      expect((await fetch(`${a!.httpUrl}/healthz`)).status).toBe(200)
      await waitFor('every slowloris socket closed by the agent', () => sockets.every((s) => s.closed), {
        timeoutMs: 15_000,
      })
    } finally {
      clearInterval(trickle)
      for (const { socket } of sockets) socket.destroy()
    }
  }, 20_000)

  it('cannot hold the p2p port with sockets that never do the cluster-key handshake', async () => {
    const [a] = cluster.agents
    const [, , host, , port] = a!.libp2p.getMultiaddrs()[0]!.toString().split('/')
    const sockets = openSockets(host!, Number(port), 300)
    try {
      await waitFor('every idle socket closed by the agent', () => sockets.every((s) => s.closed), {
        timeoutMs: 5_000,
      })
    } finally {
      for (const { socket } of sockets) socket.destroy()
    }
    // The cluster is still whole.
    await cluster.agents[2]!.replica.put('definition', definition('still-whole'))
    await waitFor('a write everywhere', () =>
      cluster.agents.every((x) => x.replica.get('definition', 'still-whole')),
    )
  })

  it('cannot keep a dead node alive with relayed beats, even as a member with a record of its own', async () => {
    const doomed = await cluster.add()
    const [a, b] = cluster.agents
    // A fresh member: the one above is graylisted by now.
    const attacker = await startAttacker()
    await attacker.join(cluster.agents)
    // Liveness as the API answers it: SWIM's for a node of this release (the beat detector tracks
    // it only while beats flow, which is while a node of the previous release is up).
    await waitFor('the new agent alive on the others', () =>
      [a!, b!].every((x) => x.liveness.status(doomed.nodeId) === 'alive'),
    )
    // The attacker joins as a member would: its own record, signed with its own key, naming its peer.
    const self = { id: 'attacker', url: 'http://127.66.0.9:11337', lastHeartbeat: new Date().toISOString() }
    const version = { ts: Date.now(), c: 0, node: 'attacker' }
    const signer = nodeSigner('attacker', attacker.node.peerId.toString(), attacker.key.raw)
    await attacker.publishChanges([
      {
        kind: 'node',
        id: 'attacker',
        version,
        value: signer.sign({ ...self, peerId: signer.peerId }, version),
      },
    ])
    await waitFor('the attacker’s record on the others', () =>
      [a!, b!].every((x) => x.replica.get('node', 'attacker') !== undefined),
    )
    const beats = new FrameChannel(
      { protocol: BEATS_PROTOCOL, maxFrameBytes: MAX_BEAT_BYTES, silentConnectionMs: 60_000 },
      { libp2p: attacker.node, log: testLogger() },
    )
    await beats.start()
    await doomed.stop()
    const diedAt = Date.now()
    // Every 100 ms, a beat of its own that relays ever newer beat times of the dead node.
    let seq = 0
    const relaying = setInterval(() => {
      const t = Date.now()
      beats.broadcast(
        encodeBeat({
          n: 'attacker',
          t,
          s: seq++,
          d: '0'.repeat(16),
          g: signer.signBeat(t),
          h: { [doomed.nodeId]: t },
          r: { [doomed.nodeId]: signer.signBeat(t) },
        }),
      )
    }, 100)
    try {
      await waitFor(
        'the dead node unreachable on every live agent',
        () => [a!, b!].every((x) => x.liveness.status(doomed.nodeId) === 'unreachable'),
        { timeoutMs: 10_000 },
      )
      // 6 heartbeats of 200 ms, a sweep, and the time the stop took.
      expect(Date.now() - diedAt).toBeLessThan(5_000)
      // The attacker's beat streams open while SWIM finds the node dead (a stop it announces can be
      // quicker than the first beat): wait for its relays to be judged, and the node to stay dead.
      await waitFor(
        'the attacker’s relays refused',
        () => a!.detector.relayStats.refused + b!.detector.relayStats.refused > 0,
      )
      expect(a!.detector.counts().accepted).toBeGreaterThan(0)
      expect([a!, b!].map((x) => x.liveness.status(doomed.nodeId))).toEqual(['unreachable', 'unreachable'])
    } finally {
      clearInterval(relaying)
      await beats.stop()
      await attacker.stop()
    }
  })
})

describe('a member flooding the changes topic, against an agent in its own process', () => {
  let agent: AgentProcess & { url: string; multiaddr: string }
  let attacker: Attacker
  let dir: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'p2p-registry-adversary-'))
    agent = await startAgentUp({
      OB_DATA_DIR: dir,
      OB_NODE_ID: 'target',
      OB_SELF_URL: 'http://127.0.0.1:21999',
      OB_CLUSTER_KEY: CLUSTER_KEY,
      OB_MAX_ENTITIES: String(MAX_ENTITIES),
      OB_LOG_LEVEL: 'info',
    })
    attacker = await startAttacker()
    await waitFor('attacker connected and subscribed', async () => {
      await attacker.node.dial(multiaddr(agent.multiaddr)).catch(() => undefined)
      return attacker.node.services.pubsub.getSubscribers(CHANGES_TOPIC).length > 0
    })
  }, 60_000)

  afterAll(async () => {
    await attacker?.stop()
    agent?.child.kill('SIGKILL')
    await agent?.exited()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('keeps lookups fast while 20,000 messages arrive in a few seconds, and holds no more than its limit', async () => {
    // Lookups from a process of their own, so the attacker's work in this one does not delay them.
    const prober = spawn(
      process.execPath,
      ['-e', LOOKUP_LOOP, `${agent.url}/registry-svc/instances?slug=flood`],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    const latencies: number[] = []
    createInterface({ input: prober.stdout! }).on('line', (line) => latencies.push(Number(line)))
    await waitFor('the first lookups', () => latencies.length >= 5)
    const before = latencies.length
    const started = Date.now()
    let n = 0
    while (n < 20_000) {
      await Promise.all(
        Array.from({ length: 100 }, () =>
          attacker.publishChanges([instanceChange(n++, { ts: Date.now(), c: 0, node: 'attacker' })]),
        ),
      )
    }
    const sentMs = Date.now() - started
    // Lookups go on while the agent works through what arrived.
    await waitFor(
      'the agent to hold the flood up to its limit',
      async () => {
        const { instances } = (await (
          await fetch(`${agent.url}/registry-svc/instances?slug=flood`)
        ).json()) as {
          instances: unknown[]
        }
        return instances.length === MAX_ENTITIES
      },
      { timeoutMs: 30_000 },
    )
    prober.kill()
    await once(prober, 'exit')
    const during = latencies.slice(before)
    expect(during.length).toBeGreaterThan(0)
    during.sort((x, y) => x - y)
    const max = during.at(-1)!
    const median = during[during.length >> 1]!
    const p99 = during[Math.floor(during.length * 0.99)]!
    console.log(
      `[adversary] 20,000 messages sent in ${sentMs} ms; ${during.length} lookups meanwhile: median ${median.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms`,
    )
    // Three busy processes on two cores (attacker, agent, lookups): the odd lookup waits for a core.
    // Bounded wait, not a benchmark: 32-137 ms alone, 614-656 ms seen on a CI machine busy with the
    // other test files (three busy processes on two cores). A flood held in a queue would be seconds.
    expect(p99).toBeLessThan(1_000)
    expect(max).toBeLessThan(2_500)
    // Memory stays bounded: the limit holds the replica, and nothing queues the flood.
    const rssMb =
      Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${agent.child.pid}/status`, 'utf8'))![1]) / 1024
    console.log(`[adversary] agent RSS after the flood: ${rssMb.toFixed(0)} MB`)
    expect(rssMb).toBeLessThan(RSS_BOUND_MB)
    const metrics = await (await fetch(`${agent.url}/metrics`)).text()
    expect(metrics).toMatch(/outcome="rejected-quota"} [1-9]/)
  }, 120_000)
})
