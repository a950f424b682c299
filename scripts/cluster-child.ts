/**
 * One agent in its own process, driven by scripts/bench-cluster.ts over the fork IPC channel.
 * It is a real agent (startAgent); the channel only tells it to write and reports what it sees.
 *
 * Parent → child: {type:'write', count, intervalMs} | {type:'bulk', count} | {type:'stats'} | {type:'stop'}
 * Child → parent: {type:'ready', ...} | {type:'wrote', id, at} | {type:'seen', ids, at} | {type:'stats', ...}
 *
 * Sightings are timed when they happen and reported in batches every REPORT_MS, so the channel costs
 * the agent little CPU while the benchmark measures it.
 */
import { startAgent } from '../src/agent/agent.ts'
import { loadConfig } from '../src/agent/config.ts'
import type { Instance } from '../src/model/index.ts'
import { CHANGES_TOPIC } from '../src/model/wire.ts'
import type { Change } from '../src/replica/change.ts'
import { createLogger } from '../src/support/logger.ts'

const send = (message: unknown) => process.send?.(message)
const now = () => performance.timeOrigin + performance.now()

const config = loadConfig({}, process.env)
const agent = await startAgent(config, await createLogger(config.logLevel, false))

const REPORT_MS = 50
const pending: Array<{ type: 'seen' | 'arrived'; ids: string[]; at: number }> = []
let reportScheduled = false
function report(type: 'seen' | 'arrived', ids: string[], at: number): void {
  pending.push({ type, ids, at })
  if (reportScheduled) return
  reportScheduled = true
  setTimeout(() => {
    reportScheduled = false
    for (const message of pending.splice(0)) send(message)
  }, REPORT_MS)
}

agent.replica.on('change', (changes, source) => {
  if (source === 'local') return
  report(
    'seen',
    changes.map((c) => c.id),
    now(),
  )
})

// When the gossip message carrying a change arrived (before validation and merge), for diagnosis.
agent.libp2p.services.pubsub.addEventListener('message', (event) => {
  if (event.detail.topic !== CHANGES_TOPIC || process.env.BENCH_ARRIVALS !== '1') return
  const at = now()
  try {
    const ids = (
      JSON.parse(new TextDecoder().decode(event.detail.data)) as { changes: Array<{ id: string }> }
    ).changes.map((c) => c.id)
    report('arrived', ids, at)
  } catch {
    // not ours to judge
  }
})

// The size of this agent's last beat, and when it calls another node unreachable (kill -9 detection).
let lastBeatBytes = 0
agent.heartbeat.on('beat', (_beat, bytes) => {
  lastBeatBytes = bytes
})
agent.liveness.on('node:unreachable', ({ nodeId }) => send({ type: 'unreachable', nodeId, at: now() }))

function instance(i: number, prefix: string): Instance {
  const ip = `127.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
  return {
    id: `${prefix}-${i}`,
    url: `http://${ip}:8080`,
    scheme: 'http',
    ip,
    port: 8080,
    slug: `svc-${i % 1000}`,
    status: 'Healthy',
    lastHeartbeat: new Date().toISOString(),
  }
}

process.on('message', async (message: { type: string; count?: number; intervalMs?: number; ts?: number }) => {
  if (message.type === 'write') {
    for (let i = 0; i < message.count!; i++) {
      const value = instance(i, `w${process.pid}`)
      const at = now()
      await agent.replica.put('instance', value)
      send({ type: 'wrote', id: value.id, at })
      await new Promise((resolve) => setTimeout(resolve, message.intervalMs ?? 10))
    }
    send({ type: 'write-done' })
  } else if (message.type === 'bulk') {
    // Loaded as if synced from elsewhere: straight into the replica, not gossiped.
    const ts = Date.now() - 1000
    for (let at = 0; at < message.count!; at += 1000) {
      const batch: Change[] = []
      for (let i = at; i < Math.min(at + 1000, message.count!); i++) {
        batch.push({
          kind: 'instance',
          id: `bulk-${i}`,
          version: { ts, c: i, node: agent.nodeId },
          value: instance(i, 'bulk'),
        })
      }
      await agent.replica.apply(batch, 'sync')
    }
    send({ type: 'bulk-done', digest: agent.replica.digest() })
  } else if (message.type === 'stats') {
    send({
      type: 'stats',
      pid: process.pid,
      digest: agent.replica.digest(),
      peers: agent.discovery.connectedPeers().length,
      connections: agent.libp2p.getConnections().length,
      rss: process.memoryUsage().rss,
      cpu: process.cpuUsage(),
      syncSessions: Object.values(agent.sync.stats.sessions).reduce((a, b) => a + b, 0),
      gossipMessages: agent.gossip.stats.messagesReceived,
      // Membership as this agent sees it: node records held, and nodes it calls alive.
      nodesKnown: agent.replica.nodes().length,
      alive: agent.liveness.statusCounts().alive,
      // Beats go out only while a node of the previous release is up.
      beatBytes: agent.liveness.beatsNeeded() ? lastBeatBytes : 0,
      swimFrames: agent.swim?.sent.frames ?? 0,
      swimBytes: agent.swim?.sent.bytes ?? 0,
      swimLargest: agent.swim?.sent.largest ?? 0,
      // UDP payload bytes (SWIM datagrams), which `ss`'s TCP counters do not see.
      datagramBytes: agent.swimDatagrams?.sent.bytes ?? 0,
      gossipBytesPublished: agent.gossip.stats.bytesPublished,
      gossipPublished: agent.gossip.stats.messagesPublished,
      at: now(),
    })
  } else if (message.type === 'stop') {
    await agent.stop()
    process.exit(0)
  }
})

send({
  type: 'ready',
  pid: process.pid,
  nodeId: agent.nodeId,
  multiaddr: agent.libp2p.getMultiaddrs()[0]?.toString(),
  digest: agent.replica.digest(),
  at: now(),
})
