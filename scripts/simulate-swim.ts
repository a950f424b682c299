/**
 * Simulates the agent's SWIM state machine (src/liveness/swim) at sizes no machine here can run as
 * processes (issue 15): N members on a simulated network (test/support/swim-net.ts) with random loss,
 * message delay and crashes (and 20% loss on one host only), in simulated time. Prints per N and loss: detection time of a crash on
 * every other member (median, p99, worst), false positives (live members declared dead), messages
 * and bytes per member per second, and how long a death takes to reach 99.9% of members.
 *
 *   node scripts/simulate-swim.ts [sizes=100,1000] [losses=0,0.05,0.2] [seconds=60] [crashes=5] [seed]
 *
 * Every member holds every other (as in the agent), so memory grows with N²: about 11 GB at 10,000,
 * which needs a larger heap and a collection between runs:
 *
 *   node --expose-gc --max-old-space-size=20000 scripts/simulate-swim.ts 100,1000,10000 0,0.1 30 3 1
 */
import { DEFAULT_SWIM_CONFIG } from '../src/liveness/swim/swim.ts'
import { SimNet } from '../test/support/swim-net.ts'

const SIZES = (process.argv[2] ?? '100,1000').split(',').map(Number)
const LOSSES = (process.argv[3] ?? '0,0.05,0.2').split(',').map(Number)
const SECONDS = Number(process.argv[4] ?? 60)
const CRASHES = Number(process.argv[5] ?? 5)
const SEED = Number(process.argv[6] ?? 1)
/** Also a run per size with 20% loss on one host only (the fault tests' case). */
const ONE_LOSSY_HOST = 0.2

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`

console.log(
  `SWIM simulation: ${SECONDS} s simulated per run, ${CRASHES} crashes halfway, delay 1-21 ms, seed ${SEED}`,
)
console.log(
  '| N | loss | detection median / p99 / worst | false positives | messages per member per s | bytes per member per s | death known by 99.9% |',
)
console.log('|---|---|---|---|---|---|---|')
/** Per N at 0% loss, for the comparison table. */
const ours = new Map<number, { detection: number; spread: number; bytes: number }>()
for (const n of SIZES) {
  for (const loss of [...LOSSES, -ONE_LOSSY_HOST]) {
    // The last run's network (11 GB at 10,000 members) is gone once its function has returned: its
    // frame held the last reference (--expose-gc).
    ;(globalThis as { gc?: () => void }).gc?.()
    const started = performance.now()
    const row = simulate(n, loss)
    console.log(
      `| ${n} | ${loss < 0 ? `${(-loss * 100).toFixed(0)}% on one host` : `${(loss * 100).toFixed(0)}%`} | ${s(row.detection)} / ${s(row.p99)} / ${s(row.worst)}${row.undetected > 0 ? ` (${row.undetected} pairs not yet)` : ''} | ${row.falsePositives} | ${row.messages.toFixed(1)} | ${row.bytes.toFixed(0)} | ${s(row.spread)} |`,
    )
    if (loss === 0) ours.set(n, { detection: row.detection, spread: row.spread, bytes: row.bytes })
    console.error(
      `  (N ${n}, loss ${loss}: ${((performance.now() - started) / 1000).toFixed(0)} s of wall time)`,
    )
  }
}

/** One run: N members, `loss` on every link (negative: that loss on one host only), crashes halfway. */
function simulate(n: number, loss: number) {
  const net = SimNet.cluster(n, SEED, Math.max(0, loss))
  if (loss < 0) net.lossyHosts.set('n1', -loss)
  net.maxDelayMs = 20
  net.countBytes = true
  // Warm up, then measure the steady state's cost over the first half.
  net.run(5_000)
  const sent0 = net.sent
  const bytes0 = net.bytes
  const half = (SECONDS * 1000) / 2
  net.run(half)
  const perMember = (x: number) => x / n / (half / 1000)
  const messages = perMember(net.sent - sent0)
  const bytes = perMember(net.bytes - bytes0)
  // Crashes, spread over the ids.
  const crashed = Array.from({ length: CRASHES }, (_, i) => `n${Math.floor(((i + 0.5) * n) / CRASHES)}`)
  const crashAt = net.now
  for (const id of crashed) net.crashed.add(id)
  net.run(half)
  const live = n - CRASHES
  const detections: number[] = []
  const spread: number[] = []
  for (const id of crashed) {
    const deaths = net.changes.filter((c) => c.node === id && c.state === 'dead' && !net.crashed.has(c.by))
    for (const d of deaths) detections.push(d.at - crashAt)
    const times = deaths.map((d) => d.at).sort((a, b) => a - b)
    const needed = Math.ceil(0.999 * live)
    spread.push(times.length >= needed ? times[needed - 1]! - times[0]! : Number.POSITIVE_INFINITY)
  }
  return {
    detection: percentile(detections, 50),
    p99: percentile(detections, 99),
    worst: Math.max(...detections),
    undetected: CRASHES * live - detections.length,
    falsePositives: net.changes.filter((c) => c.state === 'dead' && !net.crashed.has(c.node)).length,
    messages,
    bytes,
    spread: percentile(spread, 50),
  }
}

/*
 * The same N against published models, at 0% loss:
 * - SWIM (Das, Gupta, Motivala, DSN 2002): a crashed member is first probed, on average, after
 *   1 / (1 - e^-1) = 1.58 protocol periods (every live member probes one random member per period),
 *   then declared after the suspicion timeout: ours is 1.5 to 4.5 × log10(N) periods (Lifeguard).
 * - Serf's convergence simulator (memberlist's gossip, www.serf.io/docs/internals/simulator.html):
 *   the share of nodes that know a change after round x is 1 / (1 + (N+1) e^(-fanout (1-loss) x / 2)),
 *   rounds of 200 ms with fanout 3 (ours too); its bandwidth bound is 1400-byte packets × fanout × 5 per s.
 * - memberlist's LAN defaults (1 s probes, suspicion 4 × log10(N) s at least): its lower bound on detection.
 */
const { probeIntervalMs: period, suspicionMult, gossipIntervalMs, gossipNodes } = DEFAULT_SWIM_CONFIG
console.log(
  '\n| N | detection median (ours) | SWIM: first probe + our shortest suspicion | memberlist LAN defaults: at least | death known by 99.9% (ours) | Serf simulator: 99.9% | bytes per member per s (ours) | Serf simulator: bandwidth bound |',
)
console.log('|---|---|---|---|---|---|---|---|')
for (const [n, o] of ours) {
  const swimFirst = period / (1 - Math.exp(-1)) + suspicionMult * Math.max(1, Math.log10(n)) * period
  const memberlist = 1000 / (1 - Math.exp(-1)) + 4 * Math.max(1, Math.log10(n)) * 1000
  const rounds = Math.log(999 * (n + 1)) / ((gossipNodes * 1) / 2)
  console.log(
    `| ${n} | ${s(o.detection)} | ${s(swimFirst)} | ${s(memberlist)} | ${s(o.spread)} | ${s(rounds * gossipIntervalMs)} | ${o.bytes.toFixed(0)} | ${(1400 * gossipNodes * (1000 / gossipIntervalMs)).toFixed(0)} |`,
  )
}
