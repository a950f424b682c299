/** How far a periodic timer strays from its nominal interval, as a fraction: ±10%. */
export const JITTER = 0.1

/**
 * `ms` moved by a random amount within ±`fraction` of itself, so that agents started together do
 * not beat, check or refresh in lockstep (and gossip does not arrive in bursts).
 */
export function jittered(ms: number, fraction = JITTER, random: () => number = Math.random): number {
  return Math.max(1, Math.round(ms * (1 + fraction * (2 * random() - 1))))
}
