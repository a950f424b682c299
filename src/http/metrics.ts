import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { LivenessState } from '../model/index.ts'
import type { GossipStats } from '../p2p/gossip.ts'
import { APPLY_OUTCOMES, type ApplyOutcome, type ReplicaCounts } from '../replica/replica.ts'

/**
 * Anti-entropy counters since start. `sessions` is a total or a count per outcome; `applied` is what
 * merging received entries did; `failures` counts failed sessions by reason. Any other numeric field
 * of the object (`bytesReceived`, `rejectedFrames`, `staleResets`, …) is exported as
 * `p2p_registry_anti_entropy_counter_total{counter="<name>"}`, so the agent can hand in the sync
 * unit's `AntiEntropyStats` object as is.
 */
export interface AntiEntropyMetricsSource {
  sessions: number | Readonly<Record<string, number>>
  entriesReceived: number
  entriesSent: number
  applied?: Readonly<Partial<Record<ApplyOutcome, number>>>
  failures?: Readonly<Record<string, number>>
}

/**
 * Where `/metrics` reads its figures, at scrape time (nothing is pushed). Optional sources are parts
 * the agent may not run; their metrics are then listed without values.
 */
export interface MetricsSources {
  replicaCounts(): ReplicaCounts
  peersConnected(): number
  gossip?(): GossipStats
  /** Whether the agent hears every publisher directly (`p2p/gossip-reach.ts`): peers forward nothing to it. */
  gossipHearsAll?(): boolean
  antiEntropy?(): AntiEntropyMetricsSource
  liveness?(): Record<LivenessState, number>
  /** Beats heard from peers by what the failure detector made of them (`BeatOutcome`), and beat streams reset. */
  beats?(): { outcomes: Readonly<Record<string, number>>; stalledResets: number }
  /** SWIM datagrams heard, by outcome (`DatagramOutcome`). */
  swimDatagrams?(): Readonly<Record<string, number>>
  /** Instance lifecycle: self-preservation, deregistrations, reaped nodes and instances, heartbeats. */
  lifecycle?(): LifecycleMetricsSource
}

export interface LifecycleMetricsSource {
  selfPreserving: boolean
  deregistered: number
  nodesReaped: number
  instancesReaped: number
  renewals: number
}

/** What the HTTP layer itself feeds in. */
export interface HttpMetricsInputs {
  /** Hits and misses of the instance answer cache, and its size. */
  responseCache(): { hits: number; misses: number; entries: number; bytes: number }
}

export interface HttpMetrics {
  readonly registry: Registry
  /** Counts one answered request; `route` is the route pattern, never the raw URL. */
  observeRequest(method: string, route: string, statusCode: number, seconds: number): void
}

const P = 'p2p_registry_'

/** Latency buckets, seconds: a cached lookup answers well under a millisecond. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]

/**
 * The Prometheus metrics of one app, in a registry of its own (not prom-client's global one, so two
 * apps in one process, as in tests, do not share counters).
 */
export function createMetrics(
  sources: MetricsSources,
  inputs: HttpMetricsInputs,
  registry = new Registry(),
): HttpMetrics {
  const registers = [registry]
  // The event-loop lag histogram samples with a libuv timer at this resolution; prom-client's 10 ms
  // woke every idle agent 100 times a second. 200 ms still catches the stalls worth alerting on.
  collectDefaultMetrics({ register: registry, prefix: P, eventLoopMonitoringPrecision: 200 })

  new Gauge({
    name: `${P}entities`,
    help: 'Entities held in the local replica, by kind (tombstones: deletes remembered until purged)',
    labelNames: ['kind'],
    registers,
    collect() {
      const c = sources.replicaCounts()
      this.set({ kind: 'definition' }, c.definitions)
      this.set({ kind: 'instance' }, c.instances)
      this.set({ kind: 'node' }, c.nodes)
      this.set({ kind: 'tombstone' }, c.tombstones)
    },
  })
  new Gauge({
    name: `${P}peers_connected`,
    help: 'libp2p peers currently connected',
    registers,
    collect() {
      this.set(sources.peersConnected())
    },
  })

  new Gauge({
    name: `${P}gossip_hears_all`,
    help: '1 while this agent is connected to every live node, so peers forward it no gossip (it gets each message from its publisher)',
    registers,
    collect() {
      const hearsAll = sources.gossipHearsAll?.()
      if (hearsAll !== undefined) this.set(hearsAll ? 1 : 0)
    },
  })
  mirrorCounter(
    registry,
    'gossip_messages_total',
    'Gossip messages published and received',
    'direction',
    () => {
      const g = sources.gossip?.()
      return g && { published: g.messagesPublished, received: g.messagesReceived }
    },
  )
  mirrorCounter(
    registry,
    'gossip_changes_total',
    'Entity changes published and received by gossip',
    'direction',
    () => {
      const g = sources.gossip?.()
      return g && { published: g.changesPublished, received: g.changesReceived }
    },
  )
  mirrorCounter(
    registry,
    'gossip_rejected_total',
    'Gossip messages dropped by validation, by reason',
    'reason',
    () => {
      return sources.gossip?.().rejected
    },
  )
  mirrorCounter(
    registry,
    'beats_total',
    'Beats heard from directly connected peers, by what the failure detector made of them',
    'outcome',
    () => sources.beats?.().outcomes,
  )
  mirrorCounter(
    registry,
    'swim_datagrams_total',
    'SWIM datagrams heard, by outcome: accepted, or dropped (malformed, unsealed, stale, over the rate, bad signature)',
    'outcome',
    () => sources.swimDatagrams?.(),
  )
  mirrorCounter(
    registry,
    'beat_streams_reset_total',
    'Beat streams reset because the peer stopped reading them',
    'reason',
    () => {
      const b = sources.beats?.()
      return b && { stalled: b.stalledResets }
    },
  )
  new Counter({
    name: `${P}apply_outcomes_total`,
    help: 'What merging a remote change did (rejected-drift: its clock was too far ahead), by source and outcome',
    labelNames: ['source', 'outcome'],
    registers,
    collect() {
      this.reset()
      const bySource = { gossip: sources.gossip?.().outcomes, sync: sources.antiEntropy?.().applied }
      for (const [source, outcomes] of Object.entries(bySource)) {
        if (outcomes === undefined) continue
        for (const outcome of APPLY_OUTCOMES) this.inc({ source, outcome }, outcomes[outcome] ?? 0)
      }
    },
  })

  mirrorCounter(
    registry,
    'anti_entropy_sessions_total',
    'Anti-entropy sessions, by outcome',
    'outcome',
    () => {
      const sessions = sources.antiEntropy?.().sessions
      return typeof sessions === 'number' ? { all: sessions } : sessions
    },
  )
  mirrorCounter(
    registry,
    'anti_entropy_entries_total',
    'Entries exchanged by anti-entropy',
    'direction',
    () => {
      const a = sources.antiEntropy?.()
      return a && { received: a.entriesReceived, sent: a.entriesSent }
    },
  )
  mirrorCounter(
    registry,
    'anti_entropy_failures_total',
    'Failed anti-entropy sessions, by reason',
    'reason',
    () => {
      return sources.antiEntropy?.().failures
    },
  )
  mirrorCounter(
    registry,
    'anti_entropy_counter_total',
    'Other anti-entropy counters, by name',
    'counter',
    () => {
      const a = sources.antiEntropy?.()
      if (a === undefined) return undefined
      const named = new Set(['sessions', 'entriesReceived', 'entriesSent'])
      const out: Record<string, number> = {}
      for (const [name, value] of Object.entries(a))
        if (!named.has(name) && typeof value === 'number') out[name] = value
      return out
    },
  )

  new Gauge({
    name: `${P}self_preservation`,
    help: '1 while this agent sees more than OB_SELF_PRESERVATION_RATIO of known nodes unreachable and deletes nothing of other nodes',
    registers,
    collect() {
      const lifecycle = sources.lifecycle?.()
      if (lifecycle !== undefined) this.set(lifecycle.selfPreserving ? 1 : 0)
    },
  })
  mirrorCounter(
    registry,
    'lifecycle_events_total',
    'Instance lifecycle: owned instances deregistered, nodes and their instances reaped, service heartbeats taken',
    'event',
    () => {
      const l = sources.lifecycle?.()
      return (
        l && {
          deregistered: l.deregistered,
          'node-reaped': l.nodesReaped,
          'instance-reaped': l.instancesReaped,
          heartbeat: l.renewals,
        }
      )
    },
  )

  new Gauge({
    name: `${P}nodes_by_liveness`,
    help: "Known nodes by this agent's liveness view (alive, suspect, unreachable)",
    labelNames: ['state'],
    registers,
    collect() {
      const states = sources.liveness?.()
      if (states === undefined) return
      for (const [state, n] of Object.entries(states)) this.set({ state }, n)
    },
  })

  mirrorCounter(
    registry,
    'http_response_cache_total',
    'Instance lookups answered from cached bytes (hit) or serialized (miss)',
    'result',
    () => {
      const c = inputs.responseCache()
      return { hit: c.hits, miss: c.misses }
    },
  )
  new Gauge({
    name: `${P}http_response_cache_bytes`,
    help: 'Bytes of cached instance answers',
    registers,
    collect() {
      this.set(inputs.responseCache().bytes)
    },
  })

  const requests = new Counter({
    name: `${P}http_requests_total`,
    help: 'HTTP requests answered, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'],
    registers,
  })
  const durations = new Histogram({
    name: `${P}http_request_duration_seconds`,
    help: 'Time from request received to response sent, by method and route pattern',
    labelNames: ['method', 'route'],
    buckets: DURATION_BUCKETS,
    registers,
  })
  // Labelled children by `method route status`: a Map get per request instead of hashing label objects.
  const children = new Map<string, { count: Counter.Internal; duration: Histogram.Internal<string> }>()

  return {
    registry,
    observeRequest(method, route, statusCode, seconds) {
      const key = `${method} ${route} ${statusCode}`
      let child = children.get(key)
      if (child === undefined) {
        child = {
          count: requests.labels({ method, route, status_code: statusCode }),
          duration: durations.labels({ method, route }),
        }
        children.set(key, child)
      }
      child.count.inc()
      child.duration.observe(seconds)
    },
  }
}

/** A counter whose values are read from a stats object at scrape time, one label. */
function mirrorCounter(
  registry: Registry,
  name: string,
  help: string,
  label: string,
  read: () => Readonly<Record<string, number>> | undefined,
): void {
  new Counter({
    name: `${P}${name}`,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset()
      const values = read()
      if (values === undefined) return
      for (const [value, n] of Object.entries(values)) this.inc({ [label]: value }, n)
    },
  })
}
