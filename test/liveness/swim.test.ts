/**
 * The SWIM state machine (src/liveness/swim) on a simulated network: a shared clock, messages delivered
 * after a random delay or lost, crashed nodes silent. Deterministic per seed (SWIM_SEED=n replays).
 */
import { describe, expect, it } from 'vitest'
import { SimNet, signatureOf } from '../support/swim-net.ts'

const seed = Number(process.env.SWIM_SEED ?? Math.floor(Math.random() * 2 ** 32))

describe(`SWIM state machine (SWIM_SEED=${seed})`, () => {
  it('keeps every member of a healthy cluster alive, with a bounded message size', () => {
    const net = SimNet.cluster(30, seed)
    net.run(120_000)
    expect(net.changes.filter((c) => c.state !== 'alive')).toEqual([])
    expect(net.maxUpdates).toBeLessThanOrEqual(8)
    // One probe per node per period, and its ack: the cost per node does not grow with the cluster.
    const perNodePerSecond = net.sent / 30 / 120
    expect(perNodePerSecond).toBeLessThan(6)
  })

  it('finds a crashed node dead on every other node within seconds', () => {
    const net = SimNet.cluster(20, seed)
    net.run(5_000)
    const crashAt = net.now
    net.crashed.add('n7')
    net.run(20_000)
    const detected = net.deadAt('n7').map((at) => at - crashAt)
    expect(detected.every((ms) => Number.isFinite(ms))).toBe(true)
    expect(Math.max(...detected)).toBeLessThan(10_000)
    // Nobody else was accused of anything.
    expect(net.changes.filter((c) => c.node !== 'n7' && c.state !== 'alive')).toEqual([])
  })

  it('lets a node cut off for a moment refute the suspicion with a higher incarnation', () => {
    const net = SimNet.cluster(10, seed)
    net.run(3_000)
    net.cutOff.add('n3')
    // Until someone suspects it (its probe and the indirect ones fail), short of the suspicion timeout.
    for (
      let ms = 0;
      ms < 10_000 && !net.changes.some((c) => c.node === 'n3' && c.state === 'suspect');
      ms += 10
    )
      net.run(10)
    expect(net.changes.some((c) => c.node === 'n3' && c.state === 'suspect')).toBe(true)
    net.cutOff.delete('n3')
    net.run(20_000)
    expect(net.nodes.get('n3')!.incarnation).toBeGreaterThan(0)
    for (const [id, swim] of net.nodes) if (id !== 'n3') expect(swim.state('n3'), id).toBe('alive')
    expect(net.changes.filter((c) => c.node === 'n3' && c.state === 'dead')).toEqual([])
  })

  it('keeps a dead node dead: alive statements need its own signature, and old ones do not count', () => {
    const net = SimNet.cluster(8, seed)
    net.run(2_000)
    net.crashed.add('n5')
    net.run(20_000)
    const n0 = net.nodes.get('n0')!
    expect(n0.state('n5')).toBe('dead')
    // A member echoes n5's last alive (incarnation 0, properly signed) and forges a newer one.
    n0.receive('n1', {
      t: 'ping',
      seq: 1,
      from: 'n1',
      u: [{ s: 'alive', n: 'n5', i: 0, g: signatureOf('n5', 0) }],
    })
    n0.receive('n1', { t: 'ping', seq: 2, from: 'n1', u: [{ s: 'alive', n: 'n5', i: 9, g: 'forged' }] })
    expect(n0.state('n5')).toBe('dead')
    // n5 itself comes back: its own signed alive with a higher incarnation is taken.
    n0.receive('n5', {
      t: 'ping',
      seq: 3,
      from: 'n5',
      u: [{ s: 'alive', n: 'n5', i: 1, g: signatureOf('n5', 1) }],
    })
    expect(n0.state('n5')).toBe('alive')
  })

  it('flags no live node dead with 10% of messages lost', () => {
    const net = SimNet.cluster(20, seed, 0.1)
    net.run(300_000)
    // Probes fail now and then (suspicions), and every one is refuted in time.
    expect(net.changes.some((c) => c.state === 'suspect')).toBe(true)
    expect(net.changes.filter((c) => c.state === 'dead')).toEqual([])
  })
})
