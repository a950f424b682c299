import type { LivenessState } from '../model/index.ts'
import { InitError, positiveMs } from '../support/init-error.ts'
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from './heartbeat.ts'

/**
 * What this node believes about another (`LivenessState` of the model): `suspect` after
 * `suspectAfterMs` of silence (about 3 missed beats), `unreachable` after `unreachableAfterMs` (about 6).
 */
export type LivenessStatus = LivenessState

export interface LivenessThresholdsInit {
  /**
   * Interval between beats, ms, as configured on every node (`OB_HEARTBEAT_MS`); the defaults below
   * are multiples of it.
   * @default 2000
   */
  heartbeatIntervalMs?: number
  /**
   * Silence after which a node is `suspect`, ms. Lower detects sooner but turns a few lost or late
   * beats (a GC pause, a congested link) into a false suspicion.
   * @default 3 × heartbeatIntervalMs (6 s)
   */
  suspectAfterMs?: number
  /**
   * Silence after which a node is `unreachable`, ms. Must exceed `suspectAfterMs`.
   * @default 6 × heartbeatIntervalMs (12 s)
   */
  unreachableAfterMs?: number
  /**
   * Time between two sweeps over every known node, ms (±10%). It adds at most this much to the
   * detection time; beats that bring a node back are acted on at once, not on the sweep.
   * @default heartbeatIntervalMs / 2 (1 s)
   */
  checkIntervalMs?: number
}

export type LivenessThresholds = Required<LivenessThresholdsInit>

/**
 * Resolves the defaults and checks the options once. Throws `InitError` naming the option.
 *
 * Detection time, memberlist style. A node's last beat reaches us `latency` after it is sent (a few
 * ms on a LAN), and a node that crashes does so at most one beat interval (+10% jitter) after its last
 * beat. A sweep runs every `checkIntervalMs` (+10%). So every other node flags a crashed node
 *
 *     suspect      between  suspectAfterMs − 1.1 × heartbeatIntervalMs      and  suspectAfterMs + 1.1 × checkIntervalMs + latency
 *     unreachable  between  unreachableAfterMs − 1.1 × heartbeatIntervalMs  and  unreachableAfterMs + 1.1 × checkIntervalMs + latency
 *
 * after the crash: with the defaults (2 s beats) suspect within 4-7.1 s, unreachable within 10-13.1 s.
 * A live node is falsely suspected only when about `suspectAfterMs / heartbeatIntervalMs` (3) beats
 * in a row are lost or late (GC pause, congested link, CPU starvation), and falsely called
 * unreachable after about 6. Lower multiples detect sooner and flap more; higher ones the reverse.
 * Unlike memberlist's `SuspicionMult × log10(n) × ProbeInterval`, the time does not grow with the
 * cluster: every node hears every beat (gossipsub), instead of probing a few peers in turn.
 */
export function resolveThresholds(init: LivenessThresholdsInit = {}): LivenessThresholds {
  const heartbeatIntervalMs = positiveMs(
    'heartbeatIntervalMs',
    init.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
  )
  const suspectAfterMs = positiveMs('suspectAfterMs', init.suspectAfterMs ?? 3 * heartbeatIntervalMs)
  const unreachableAfterMs = positiveMs(
    'unreachableAfterMs',
    init.unreachableAfterMs ?? 6 * heartbeatIntervalMs,
  )
  const checkIntervalMs = positiveMs('checkIntervalMs', init.checkIntervalMs ?? heartbeatIntervalMs / 2)
  if (unreachableAfterMs <= suspectAfterMs) {
    throw new InitError(
      'unreachableAfterMs',
      `must exceed suspectAfterMs (${suspectAfterMs}), got ${unreachableAfterMs}`,
    )
  }
  return { heartbeatIntervalMs, suspectAfterMs, unreachableAfterMs, checkIntervalMs }
}

/**
 * The status of a node last heard from `silentMs` ago, by a detector that has been listening for
 * `listeningMs`. Pure.
 *
 * A node is called `unreachable` only once we have listened for at least `suspectAfterMs` ourselves:
 * right after our own (re)start, a node known only from an old record (written up to a record
 * refresh ago) is `suspect`, not `unreachable`, until it had time to send us a few beats. A node whose
 * record is old is never `alive` on the strength of that record.
 */
export function classify(
  silentMs: number,
  listeningMs: number,
  thresholds: Pick<LivenessThresholds, 'suspectAfterMs' | 'unreachableAfterMs'>,
): LivenessStatus {
  if (silentMs < thresholds.suspectAfterMs) return 'alive'
  if (silentMs < thresholds.unreachableAfterMs || listeningMs < thresholds.suspectAfterMs) return 'suspect'
  return 'unreachable'
}
