import { EventEmitter } from 'node:events'
import type { LookupFunction } from 'node:net'
import { performance } from 'node:perf_hooks'
import {
  type Check,
  type CheckType,
  type Instance,
  type InstanceStatus,
  normaliseNodeUrl,
  parseInstance,
} from '../model/index.ts'
import type { Change } from '../replica/change.ts'
import type { ChangeSource, Replica } from '../replica/replica.ts'
import type { Version } from '../replica/version.ts'
import { emitSafely } from '../support/emit-safely.ts'
import { InitError, positiveMs } from '../support/init-error.ts'
import { jittered } from '../support/jitter.ts'
import type { Logger } from '../support/logger.ts'
import type { Startable } from '../support/startable.ts'
import { checkUrlOf, type HttpProbeResult, httpProbe } from './http-probe.ts'
import type { ProbeNetworks } from './probe-networks.ts'
import { type ProbeTarget, probeTargetOf, type TcpProbeResult, targetKey, tcpProbe } from './tcp-probe.ts'

export const DEFAULT_PROBE_INTERVAL_MS = 5000
export const DEFAULT_PROBE_TIMEOUT_MS = 2000
export const DEFAULT_DEGRADED_AFTER_MS = 500
/**
 * An hour: a steady instance costs a cluster-wide write per hour, not per probe or per minute (the
 * check benchmark's steady write rate); liveness of its owner is what says it is still checked.
 */
export const DEFAULT_STATUS_REFRESH_MS = 60 * 60 * 1000
export const DEFAULT_PROBE_CONCURRENCY = 16
export const DEFAULT_TTL_MS = 30_000
/** 30 minutes: a service down that long is gone, or will register again when it starts. */
export const DEFAULT_DEREGISTER_AFTER_MS = 30 * 60 * 1000
export const DEFAULT_CHECK_TYPE: CheckType = 'tcp'

export interface InstanceProberInit {
  /**
   * Time between two probes of one owned instance, ms (each ±10%, counted from the end of the last
   * probe, so a slow instance is never probed twice at once). At start the first probes are spread
   * evenly over one interval; an instance that appears (or is re-registered, status `Unknown`) is
   * probed at once. Sets how long a dead instance can still be answered as Healthy.
   * @default 5000
   */
  intervalMs?: number
  /**
   * Deadline of one probe (name resolution + TCP handshake), ms. Past it the instance is
   * `Unreachable` ("no answer within … ms"). Keep it below `intervalMs`.
   * @default 2000
   */
  timeoutMs?: number
  /**
   * A connect that succeeds but takes longer than this, ms, makes the instance `Degraded`. 0 marks
   * every instance that answers at all as Degraded (only useful in tests).
   * @default 500
   */
  degradedAfterMs?: number
  /**
   * How old the stored `lastHeartbeat` may get while the status stays the same, ms: a probe finding it
   * older rewrites status + lastHeartbeat. Each write is gossiped to and stored by every replica, so
   * this keeps a cluster-wide write per instance per refresh instead of one per probe, while
   * `lastHeartbeat` still says "vouched for by its owner within the last hour".
   * @default 3600000
   */
  refreshMs?: number
  /**
   * Most probes in flight at once (each holds a socket and a timer). Probes that fall due beyond it
   * wait in a queue, so a node owning thousands of instances opens at most this many connections.
   * @default 16
   */
  concurrency?: number
  /** The check of an instance registered without one (`OB_DEFAULT_CHECK`). @default 'tcp' */
  defaultCheck?: CheckType
  /** How long a ttl check waits for a heartbeat when the check names no `ttlMs`, ms. @default 30000 */
  ttlMs?: number
  /**
   * Delete an owned instance once it has been Unreachable or Error this long without a break, ms, when
   * its check names no `deregisterAfterMs` (`OB_DEREGISTER_AFTER_MS`); 0 never. @default 1800000
   */
  deregisterAfterMs?: number
}

export interface InstanceProberComponents {
  /** Where owned instances are found and their status is written (and then gossiped by the agent). */
  replica: Pick<Replica, 'instances' | 'get' | 'entry' | 'put' | 'putStatus' | 'remove' | 'on' | 'off'>
  log: Logger
  /** This agent's URL (`OB_SELF_URL`): the instances whose `nodeUrl` is this URL are ours to probe. */
  selfUrl: string
  /** Monotonic ms clock that times each connect; tests hand in a stepping fake. @default performance.now */
  now?: () => number
  /** Host name resolution for probes. @default dns.lookup */
  lookup?: LookupFunction
  /** Where probes may connect (`OB_PROBE_NETWORKS`). @default anywhere */
  networks?: ProbeNetworks
  /**
   * This agent's node id: when its record is reaped (deleted by other agents while we were cut off),
   * the owned instances reaped with it are registered again. @default none: nothing is re-registered
   */
  nodeId?: string
}

/** How close in time a reap of our record and deletes of our instances must be to count as one reap. */
export const REAP_RESTORE_WINDOW_MS = 60_000

/** A status a probe can find (`Unknown` is only ever set by registration). */
export type ProbeStatus = Exclude<InstanceStatus, 'Unknown'>
export const PROBE_STATUSES: readonly ProbeStatus[] = ['Healthy', 'Degraded', 'Unreachable', 'Error']

/**
 * What happened to a probe result. Doubles as a log field and a metric label.
 * - `changed`: status or details differ from the stored record, so it was written.
 * - `refresh`: same status, but the stored `lastHeartbeat` was older than `refreshMs`; written.
 * - `unchanged`: same status and a recent `lastHeartbeat`; nothing written.
 * - `gone`: the instance was deleted while it was probed; nothing written (no resurrection).
 * - `disowned`: the instance moved to another node while it was probed; nothing written.
 * - `moved`: its address changed while it was probed; nothing written, probed again at once.
 */
export type SettleOutcome = 'changed' | 'refresh' | 'unchanged' | 'gone' | 'disowned' | 'moved'

export interface InstanceProbeResult {
  id: string
  status: ProbeStatus
  /** Connect time (or time to failure), ms; 0 for `Error`. */
  ms: number
  details?: string
}

export interface InstanceStatusChange {
  id: string
  status: ProbeStatus
  previous: InstanceStatus
  details?: string
}

/** A heartbeat of a service (`PUT /registry-svc/instance/{id}/heartbeat`), kept in memory by its owner. */
interface Renewal {
  /** Local wall-clock ms of the heartbeat. */
  atMs: number
  status: ProbeStatus | undefined
  details: string | undefined
}

export type RenewOutcome = 'renewed' | 'unknown' | 'not-owned'

export interface InstanceProberEvents {
  /** A probe finished (emitted before its result is compared with the replica and maybe written). */
  probe: [result: InstanceProbeResult]
  /** A write that changed an instance's status is durable. */
  status: [change: InstanceStatusChange]
  /** An instance record was written (status, details, lastHeartbeat) and is durable. */
  write: [instance: Instance, reason: 'changed' | 'refresh']
  /** An owned instance down for its `deregisterAfterMs` was deleted. */
  deregister: [instance: Instance, downForMs: number]
}

export interface InstanceProberStats {
  /** Probes finished. */
  probes: number
  /** Probes finished, by the status they found. */
  outcomes: Record<ProbeStatus, number>
  /** Probe results, by what was done with them (`changed` + `refresh` are the writes). */
  settled: Record<SettleOutcome, number>
  /** Instance records written (status changes + refreshes). */
  writes: number
  /** Writes that failed (logged). */
  writeErrors: number
  /** Status writes dropped because the instance was deleted or re-registered meanwhile. */
  dropped: number
  /** Owned instances deleted after being down for their `deregisterAfterMs`. */
  deregistered: number
  /** Heartbeats of services received. */
  renewals: number
}

/** A check's connect or request in flight. */
interface Probe {
  readonly result: Promise<TcpProbeResult | HttpProbeResult>
  cancel(): void
}

/** One owned instance being probed. Replaced (not reused) when the instance is untracked and back. */
interface Target {
  readonly id: string
  state: 'scheduled' | 'queued' | 'probing' | 'writing'
  timer: ReturnType<typeof setTimeout> | undefined
  probe: Probe | undefined
  /** Its check's interval, as of its last check. */
  intervalMs: number
  /** The instance as last read: what is registered again if it is reaped (see `#restoreReaped`). */
  last: Instance | undefined
  /** Local wall-clock ms since when every check found it Unreachable or Error; undefined when up. */
  downSinceMs: number | undefined
}

/** Our write of an instance, between the re-read that justified it and its change event. */
interface PendingWrite {
  readonly record: Instance
  applied: boolean
  /** The last change of the same instance merged after our re-read and before our write. */
  intervening: Change | undefined
}

/**
 * Whether a merged change is the status write of `record` (the replica signs a copy of it, so it is
 * not the same object): a status write with the same status, details and write time, to the ms.
 */
function isOurWrite(change: Change, record: Instance): boolean {
  const value = change.value as Instance | null
  return (
    change.basedOn !== undefined &&
    value !== null &&
    value.lastHeartbeat === record.lastHeartbeat &&
    value.status === record.status &&
    value.details === record.details
  )
}

/**
 * Probes the instances this agent owns (`nodeUrl` is our URL, like 1Backend: N agents do not probe
 * an instance N times) with a TCP connect, and writes what it finds through the replica:
 * `Healthy` (connected within `degradedAfterMs`), `Degraded` (connected, slowly), `Unreachable`
 * (refused, timed out, name not resolved; `details` says which), `Error` (no usable host or port).
 *
 * Writes are rare: a probe result is written only when status or details differ from the stored
 * record, or when its `lastHeartbeat` is older than `refreshMs`. Details are stable sentences (no
 * timings), so a steady instance costs one write per refresh, whatever the probe interval.
 *
 * The set of owned instances follows the replica: an initial scan, then its `change` events (new,
 * deleted, re-homed instances). Before writing, the instance is read again: deleted → nothing is
 * written; moved to another node or to another address → nothing is written. The result is a status
 * write (`Replica.putStatus`): based on the registration the replica holds, and ordered right after
 * it, so a delete or re-registration that merges meanwhile, here or on any other agent, wins over it
 * everywhere. Such a write is counted as dropped; there is nothing to put back.
 */
export class InstanceProber extends EventEmitter<InstanceProberEvents> implements Startable {
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly degradedAfterMs: number
  readonly refreshMs: number
  readonly concurrency: number
  readonly stats: InstanceProberStats = {
    probes: 0,
    outcomes: { Healthy: 0, Degraded: 0, Unreachable: 0, Error: 0 },
    settled: { changed: 0, refresh: 0, unchanged: 0, gone: 0, disowned: 0, moved: 0 },
    writes: 0,
    writeErrors: 0,
    dropped: 0,
    deregistered: 0,
    renewals: 0,
  }
  readonly defaultCheck: CheckType
  readonly ttlMs: number
  readonly deregisterAfterMs: number
  readonly #components: InstanceProberComponents
  /** Name resolution for probes, keeping only addresses inside the probe networks. */
  readonly #lookup: LookupFunction | undefined
  readonly #log: Logger
  readonly #self: string
  readonly #now: () => number
  readonly #targets = new Map<string, Target>()
  readonly #queue: Target[] = []
  readonly #pendingWrites = new Map<string, PendingWrite>()
  /** Probe results and writes in flight, awaited by `stop`. */
  readonly #work = new Set<Promise<void>>()
  /** Owned instances deleted by other agents lately, by id (see `#restoreReaped`). */
  readonly #lost = new Map<string, { instance: Instance; atMs: number }>()
  /** When other agents last deleted our node record (a reap, or an operator's delete). */
  #ourRecordDeletedAtMs: number | undefined
  /** Heartbeats of owned instances, by id (in memory: a restarted agent waits one ttl for the next). */
  readonly #renewals = new Map<string, Renewal>()
  #inFlight = 0
  #running = false
  #listening = false

  constructor(init: InstanceProberInit, components: InstanceProberComponents) {
    super()
    this.intervalMs = positiveMs('intervalMs', init.intervalMs ?? DEFAULT_PROBE_INTERVAL_MS)
    this.timeoutMs = positiveMs('timeoutMs', init.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS)
    this.refreshMs = positiveMs('refreshMs', init.refreshMs ?? DEFAULT_STATUS_REFRESH_MS)
    const degraded = init.degradedAfterMs ?? DEFAULT_DEGRADED_AFTER_MS
    if (!Number.isFinite(degraded) || degraded < 0) {
      throw new InitError('degradedAfterMs', `must be 0 or more milliseconds, got ${degraded}`)
    }
    this.degradedAfterMs = degraded
    const concurrency = init.concurrency ?? DEFAULT_PROBE_CONCURRENCY
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new InitError('concurrency', `must be a positive integer, got ${concurrency}`)
    }
    this.concurrency = concurrency
    this.defaultCheck = init.defaultCheck ?? DEFAULT_CHECK_TYPE
    this.ttlMs = positiveMs('ttlMs', init.ttlMs ?? DEFAULT_TTL_MS)
    const deregister = init.deregisterAfterMs ?? DEFAULT_DEREGISTER_AFTER_MS
    if (!Number.isFinite(deregister) || deregister < 0) {
      throw new InitError('deregisterAfterMs', `must be 0 (never) or more milliseconds, got ${deregister}`)
    }
    this.deregisterAfterMs = deregister
    this.#components = components
    this.#lookup = components.networks?.filterLookup(components.lookup) ?? components.lookup
    this.#log = components.log
    this.#self = normaliseNodeUrl(components.selfUrl)
    this.#now = components.now ?? (() => performance.now())
  }

  get isStarted(): boolean {
    return this.#running
  }

  /** Owned instances being tracked. */
  get tracked(): number {
    return this.#targets.size
  }

  /** Probes with a socket open right now. */
  get inFlight(): number {
    return this.#inFlight
  }

  /** Whether an instance is ours to probe: its `nodeUrl` is our URL. */
  owns(instance: Pick<Instance, 'nodeUrl'>): boolean {
    return instance.nodeUrl !== undefined && normaliseNodeUrl(instance.nodeUrl) === this.#self
  }

  /** The check an instance gets: its own, else the agent's default type, with the agent's times. */
  checkOf(
    instance: Pick<Instance, 'check'>,
  ): Required<Pick<Check, 'type' | 'intervalMs' | 'timeoutMs' | 'ttlMs' | 'deregisterAfterMs'>> &
    Pick<Check, 'path'> {
    const c = instance.check
    return {
      type: c?.type ?? this.defaultCheck,
      intervalMs: c?.intervalMs ?? this.intervalMs,
      timeoutMs: c?.timeoutMs ?? this.timeoutMs,
      ttlMs: c?.ttlMs ?? this.ttlMs,
      deregisterAfterMs: c?.deregisterAfterMs ?? this.deregisterAfterMs,
      ...(c?.path === undefined ? {} : { path: c.path }),
    }
  }

  /**
   * A heartbeat from the service of an owned instance: renews a ttl check, and for ttl and none checks
   * sets the status (Healthy when none is given). Checked at once, so a status change is written now;
   * tcp and http checks note it and go on deciding by themselves.
   */
  renew(id: string, given: { status?: ProbeStatus; details?: string } = {}): RenewOutcome {
    const instance = this.#components.replica.get('instance', id)
    if (instance === undefined) return 'unknown'
    if (!this.owns(instance)) return 'not-owned'
    this.stats.renewals++
    this.#renewals.set(id, { atMs: Date.now(), status: given.status, details: given.details })
    const target = this.#targets.get(id)
    if (target !== undefined && target.state === 'scheduled') this.#schedule(target, 0)
    return 'renewed'
  }

  /** Scans the replica for owned instances and schedules their probes, spread over one interval. Idempotent. */
  start(): void {
    if (this.#running) return
    this.#running = true
    if (!this.#listening) this.#components.replica.on('change', this.#onChange)
    this.#listening = true
    for (const instance of this.#components.replica.instances()) {
      if (this.owns(instance)) this.#track(instance.id, Math.random() * this.intervalMs)
    }
    this.#log.debug({ owned: this.#targets.size, selfUrl: this.#self }, 'instance probes started')
  }

  /**
   * Cancels every timer and probe (sockets destroyed and closed), waits for writes in flight (still
   * watching the replica for a delete racing them), then forgets all state.
   */
  async stop(): Promise<void> {
    this.#running = false
    for (const target of [...this.#targets.values()]) this.#untrack(target)
    this.#queue.length = 0
    while (this.#work.size > 0) await Promise.allSettled([...this.#work])
    if (this.#running) return // started again meanwhile
    this.#components.replica.off('change', this.#onChange)
    this.#listening = false
    this.#pendingWrites.clear()
  }

  #track(id: string, delayMs: number): void {
    if (this.#targets.has(id)) return
    const target: Target = {
      id,
      state: 'scheduled',
      timer: undefined,
      probe: undefined,
      intervalMs: this.intervalMs,
      downSinceMs: undefined,
      last: this.#components.replica.get('instance', id),
    }
    this.#targets.set(id, target)
    this.#schedule(target, delayMs)
  }

  #untrack(target: Target): void {
    if (this.#targets.get(target.id) === target) {
      this.#targets.delete(target.id)
      this.#renewals.delete(target.id)
    }
    clearTimeout(target.timer)
    target.timer = undefined
    target.probe?.cancel()
    const queued = this.#queue.indexOf(target)
    if (queued !== -1) this.#queue.splice(queued, 1)
  }

  #isCurrent(target: Target): boolean {
    return this.#running && this.#targets.get(target.id) === target
  }

  #schedule(target: Target, delayMs: number): void {
    if (!this.#isCurrent(target)) return
    clearTimeout(target.timer)
    target.state = 'scheduled'
    target.timer = setTimeout(() => this.#due(target), Math.max(0, Math.round(delayMs)))
  }

  #due(target: Target): void {
    target.timer = undefined
    if (!this.#isCurrent(target)) return
    if (this.#inFlight >= this.concurrency) {
      target.state = 'queued'
      this.#queue.push(target)
      return
    }
    this.#guard(() => this.#probe(target))
  }

  /** Starts queued probes while there is room. */
  #drain(): void {
    while (this.#running && this.#inFlight < this.concurrency && this.#queue.length > 0) {
      const target = this.#queue.shift()!
      if (this.#isCurrent(target)) this.#guard(() => this.#probe(target))
    }
  }

  #probe(target: Target): void {
    const instance = this.#components.replica.get('instance', target.id)
    if (instance === undefined || !this.owns(instance)) {
      this.stats.settled[instance === undefined ? 'gone' : 'disowned']++
      this.#untrack(target)
      return
    }
    const check = this.checkOf(instance)
    target.intervalMs = check.intervalMs
    target.last = instance
    const address = probeTargetOf(instance)
    if (check.type === 'ttl' || check.type === 'none') {
      const result = this.#renewalResult(target.id, instance, check.type, check.ttlMs)
      if (result === undefined) this.#schedule(target, jittered(target.intervalMs))
      else this.#settle(target, address, result)
      return
    }
    if ('problem' in address) {
      this.#settle(target, address, { id: target.id, status: 'Error', ms: 0, details: address.problem })
      return
    }
    const refusal = this.#components.networks?.refusal(address.host)
    if (refusal !== undefined) {
      this.#settle(target, address, { id: target.id, status: 'Error', ms: 0, details: refusal })
      return
    }
    let probe: Probe
    if (check.type === 'http') {
      const url = checkUrlOf(instance, check.path)
      if ('problem' in url) {
        this.#settle(target, address, { id: target.id, status: 'Error', ms: 0, details: url.problem })
        return
      }
      probe = httpProbe(url, { timeoutMs: check.timeoutMs, now: this.#now, lookup: this.#lookup })
    } else {
      probe = tcpProbe(address, { timeoutMs: check.timeoutMs, now: this.#now, lookup: this.#lookup })
    }
    target.state = 'probing'
    this.#inFlight++
    target.probe = probe
    this.#hold(
      probe.result.then((r) => {
        this.#inFlight--
        target.probe = undefined
        this.#drain()
        if (!this.#isCurrent(target) || (!r.ok && r.cancelled)) return
        this.#settle(target, address, this.#classify(target.id, r, check.type))
      }),
    )
  }

  /** A connect or request outcome as a status: slow or 429 is Degraded, any other failure Unreachable. */
  #classify(id: string, r: TcpProbeResult | HttpProbeResult, type: CheckType): InstanceProbeResult {
    if (!r.ok) return { id, status: 'Unreachable', ms: r.ms, details: r.reason }
    const code = 'statusCode' in r ? r.statusCode : undefined
    if (type === 'http' && code !== undefined && code !== 429 && (code < 200 || code > 299)) {
      return { id, status: 'Unreachable', ms: r.ms, details: `HTTP ${code}` }
    }
    if (code === 429) return { id, status: 'Degraded', ms: r.ms, details: 'HTTP 429: too many requests' }
    if (r.ms > this.degradedAfterMs) {
      const what = type === 'http' ? 'HTTP answer' : 'TCP connect'
      return {
        id,
        status: 'Degraded',
        ms: r.ms,
        details: `${what} took longer than ${this.degradedAfterMs} ms`,
      }
    }
    return { id, status: 'Healthy', ms: r.ms }
  }

  /**
   * The status a ttl or none check gives: the last heartbeat's (Healthy when it named none), and for
   * ttl, Unreachable once no heartbeat came for `ttlMs` (counted from registration before the first).
   * Undefined for a none check that never heard a heartbeat: its status stays as registered.
   */
  #renewalResult(
    id: string,
    instance: Instance,
    type: 'ttl' | 'none',
    ttlMs: number,
  ): InstanceProbeResult | undefined {
    const renewal = this.#renewals.get(id)
    if (type === 'ttl') {
      const since = renewal?.atMs ?? Date.parse(instance.lastHeartbeat ?? '')
      if (Number.isNaN(since) || Date.now() - since > ttlMs) {
        return { id, status: 'Unreachable', ms: 0, details: `no heartbeat within the ttl of ${ttlMs} ms` }
      }
    }
    if (renewal === undefined) {
      return type === 'ttl' ? { id, status: 'Healthy', ms: 0 } : undefined
    }
    const result: InstanceProbeResult = { id, status: renewal.status ?? 'Healthy', ms: 0 }
    if (renewal.details !== undefined) result.details = renewal.details
    return result
  }

  /**
   * Counts how long an owned instance has been down without a break, and deletes it once that reaches
   * its `deregisterAfterMs` (an ordinary delete, tombstoned and gossiped). Returns whether it did.
   */
  async #deregisterIfDue(target: Target, current: Instance, result: InstanceProbeResult): Promise<boolean> {
    if (result.status !== 'Unreachable' && result.status !== 'Error') {
      target.downSinceMs = undefined
      return false
    }
    const now = Date.now()
    target.downSinceMs ??= now
    const after = this.checkOf(current).deregisterAfterMs
    const downFor = now - target.downSinceMs
    if (after === 0 || downFor < after) return false
    if ((await this.#components.replica.remove('instance', current.id)) === undefined) return false
    this.stats.deregistered++
    this.#log.info(
      {
        instanceId: current.id,
        slug: current.slug,
        url: current.url,
        downForMs: downFor,
        details: result.details,
      },
      'instance deregistered: down for its deregisterAfterMs',
    )
    this.#notify('deregister', current, downFor)
    return true
  }

  /** Compares a result with the stored instance, writes it when due, then schedules the next probe. */
  #settle(target: Target, probed: ProbeTarget | { problem: string }, result: InstanceProbeResult): void {
    this.stats.probes++
    this.stats.outcomes[result.status]++
    this.#notify('probe', result)
    if (!this.#isCurrent(target)) return
    const current = this.#components.replica.get('instance', target.id)
    if (current === undefined || !this.owns(current)) {
      this.stats.settled[current === undefined ? 'gone' : 'disowned']++
      this.#untrack(target)
      return
    }
    // The registration `current` shows: the status write is based on it, or not written at all.
    const entry = this.#components.replica.entry(`instance/${target.id}`)!
    const registration = entry.basedOn ?? entry.version
    const now = probeTargetOf(current)
    if (!sameAddress(now, probed)) {
      this.stats.settled.moved++
      this.#schedule(target, 0)
      return
    }
    if (this.#pendingWrites.has(target.id)) {
      // An earlier tracking of this id is still writing (deleted and re-registered meanwhile): let it land.
      this.#schedule(target, jittered(target.intervalMs))
      return
    }
    const outcome = this.#decide(current, result)
    this.stats.settled[outcome]++
    target.state = 'writing'
    this.#hold(
      (async () => {
        if (await this.#deregisterIfDue(target, current, result)) return
        if (outcome === 'changed' || outcome === 'refresh')
          await this.#write(current, registration, result, outcome)
      })().finally(() => this.#schedule(target, jittered(target.intervalMs))),
    )
  }

  #decide(current: Instance, result: InstanceProbeResult): 'changed' | 'refresh' | 'unchanged' {
    if (current.status !== result.status || current.details !== result.details) return 'changed'
    const age = Date.now() - Date.parse(current.lastHeartbeat ?? '')
    // NaN (no or bad timestamp) and negative ages (our clock went back) refresh too.
    return age >= 0 && age < this.refreshMs ? 'unchanged' : 'refresh'
  }

  async #write(
    current: Instance,
    registration: Version,
    result: InstanceProbeResult,
    reason: 'changed' | 'refresh',
  ): Promise<void> {
    const { details: _details, lastHeartbeat: _lastHeartbeat, ...rest } = current
    const record: Instance = {
      ...rest,
      status: result.status,
      ...(result.details === undefined ? {} : { details: result.details }),
      lastHeartbeat: new Date().toISOString(),
    }
    const pending: PendingWrite = { record, applied: false, intervening: undefined }
    this.#pendingWrites.set(record.id, pending)
    let written: Change | undefined
    try {
      written = await this.#components.replica.putStatus(record, registration)
    } catch (err) {
      this.stats.writeErrors++
      this.#log.error({ err, instanceId: record.id }, 'cannot write instance status')
      return
    } finally {
      if (this.#pendingWrites.get(record.id) === pending) this.#pendingWrites.delete(record.id)
    }
    if (written === undefined || pending.intervening !== undefined) {
      // Deleted or re-registered meanwhile. A status write is ordered right after the registration it
      // describes (replica/lww.ts), so that other write wins everywhere.
      this.stats.dropped++
      this.#log.debug(
        { instanceId: record.id },
        'instance changed while its status was being written; status dropped',
      )
      return
    }
    this.stats.writes++
    this.#log.debug(
      { instanceId: record.id, status: record.status, previous: current.status, reason },
      'instance status written',
    )
    this.#notify('write', record, reason)
    if (current.status !== record.status) {
      const change: InstanceStatusChange = { id: record.id, status: result.status, previous: current.status }
      if (result.details !== undefined) change.details = result.details
      this.#notify('status', change)
    }
  }

  /** Follows the replica: new owned instances are probed at once, deleted or re-homed ones dropped. */
  #onChange = (changes: Change[], source: ChangeSource): void => {
    const now = Date.now()
    let deletedElsewhere = false
    for (const change of changes) {
      if (change.kind === 'node') {
        if (change.id === this.#components.nodeId && change.value === null && source !== 'local') {
          this.#ourRecordDeletedAtMs = now
          deletedElsewhere = true
        }
        continue
      }
      if (change.kind !== 'instance') continue
      const lost = this.#targets.get(change.id)?.last
      if (change.value === null && source !== 'local' && lost !== undefined && this.#running) {
        this.#lost.set(change.id, { instance: lost, atMs: now })
        deletedElsewhere = true
      }
      const pending = this.#pendingWrites.get(change.id)
      if (pending !== undefined && !pending.applied) {
        if (isOurWrite(change, pending.record)) pending.applied = true
        else pending.intervening = change
      }
      if (!this.#running) continue
      const target = this.#targets.get(change.id)
      const instance = change.value as Instance | null
      if (instance === null || !this.owns(instance)) {
        if (target !== undefined) this.#untrack(target)
      } else if (target === undefined) {
        this.#track(change.id, 0)
      } else if (instance.status === 'Unknown' && target.state === 'scheduled') {
        // Re-registered: answer with a real status soon rather than after a whole interval.
        this.#schedule(target, 0)
      }
    }
    if (deletedElsewhere) this.#hold(this.#restoreReaped(now))
  }

  /**
   * Other agents reap a node unreachable for `OB_NODE_REAP_AFTER_MS`: its instances, then its record.
   * When that happens to us, we were cut off, not dead, and the services we check are still there:
   * the heartbeat writes our record again, and this registers again the owned instances deleted by
   * other agents within `REAP_RESTORE_WINDOW_MS` of our record's delete (status Unknown until checked).
   * An instance a client deleted in that same minute comes back too; it is logged.
   */
  async #restoreReaped(now: number): Promise<void> {
    for (const [id, { atMs }] of this.#lost) if (now - atMs > REAP_RESTORE_WINDOW_MS) this.#lost.delete(id)
    const reapedAt = this.#ourRecordDeletedAtMs
    if (reapedAt === undefined || now - reapedAt > REAP_RESTORE_WINDOW_MS || this.#lost.size === 0) return
    const restored: string[] = []
    for (const [id, { instance }] of [...this.#lost]) {
      this.#lost.delete(id)
      if (this.#components.replica.get('instance', id) !== undefined) continue
      const { signature: _signature, details: _details, ...registration } = instance
      await this.#components.replica.put(
        'instance',
        parseInstance({ ...registration, status: 'Unknown', lastHeartbeat: new Date().toISOString() }),
      )
      restored.push(id)
    }
    if (restored.length > 0) {
      this.#log.warn(
        { instances: restored },
        'our node was reaped while cut off from the cluster: its instances are registered again',
      )
    }
  }

  /** Keeps a promise for `stop` to await until it settles; never lets it reject unhandled. */
  #hold(work: Promise<void>): void {
    const held = work
      .catch((err: unknown) => this.#log.error({ err }, 'instance probe failed'))
      .finally(() => {
        this.#work.delete(held)
      })
    this.#work.add(held)
  }

  /** Runs timer work without letting an exception escape. */
  #guard(run: () => void): void {
    try {
      run()
    } catch (err) {
      this.#log.error({ err }, 'instance probe failed')
    }
  }

  /** Emits without letting a listener's exception escape into a timer or a write. */
  #notify<K extends keyof InstanceProberEvents>(event: K, ...args: InstanceProberEvents[K]): void {
    emitSafely(this, this.#log, 'instance probe', event, args)
  }
}

function sameAddress(a: ProbeTarget | { problem: string }, b: ProbeTarget | { problem: string }): boolean {
  if ('problem' in a || 'problem' in b) return 'problem' in a && 'problem' in b && a.problem === b.problem
  return targetKey(a) === targetKey(b)
}

/** `instanceProber(init)(components)`: the factory form of `new InstanceProber(init, components)`. */
export function instanceProber(
  init: InstanceProberInit = {},
): (components: InstanceProberComponents) => InstanceProber {
  return (components) => new InstanceProber(init, components)
}
