import diagnostics from 'node:diagnostics_channel'
import type { Socket } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { type LivenessNode, startLivenessCluster } from './liveness-cluster.ts'

/**
 * Idle traffic of a 10-node cluster at the default heartbeat (2 s), everything included: beats with
 * gossipsub's signature and forwarding, gossipsub control messages, Noise and Yamux framing.
 * Slow (about 45 s), so opt-in: `LIVENESS_BENCH=1 npx vitest run test/liveness/bandwidth.test.ts`.
 */
describe.runIf(process.env.LIVENESS_BENCH === '1')('idle bandwidth, 10 nodes on 127.0.0.1', () => {
  const sockets = new Set<Socket>()
  const collect = (message: unknown) => sockets.add((message as { socket: Socket }).socket)
  diagnostics.subscribe('net.client.socket', collect)
  diagnostics.subscribe('net.server.socket', collect)
  let nodes: LivenessNode[] = []

  afterAll(async () => {
    diagnostics.unsubscribe('net.client.socket', collect)
    diagnostics.unsubscribe('net.server.socket', collect)
    await Promise.all(nodes.map((n) => n.stop()))
  })

  const bytesRead = () => [...sockets].reduce((sum, s) => sum + s.bytesRead, 0)
  async function rate(seconds: number): Promise<number> {
    const before = bytesRead()
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
    // Every byte is read by exactly one node: the mean inbound (= mean outbound) rate per node.
    return (bytesRead() - before) / seconds / nodes.length
  }

  it('stays under 5 KB/s per node', async () => {
    const count = 10
    nodes = await startLivenessCluster(count, { heartbeatIntervalMs: 2000 }, { startHeartbeats: false })
    await new Promise((resolve) => setTimeout(resolve, 3000)) // meshes settle
    const baseline = await rate(10)
    await Promise.all(nodes.map((n) => n.heartbeat.start()))
    await new Promise((resolve) => setTimeout(resolve, 3000)) // records spread, beats flow
    const withBeats = await rate(20)
    const accepted = nodes.map((n) => n.detector.counts().accepted)
    console.info(
      `per node, inbound: ${(baseline / 1024).toFixed(2)} KB/s without beats, ${(withBeats / 1024).toFixed(2)} KB/s with beats ` +
        `(beats alone ${((withBeats - baseline) / 1024).toFixed(2)} KB/s); beats accepted per node: ${Math.min(...accepted)}-${Math.max(...accepted)}`,
    )
    expect(nodes.every((a) => nodes.every((b) => a.detector.status(b.id) === 'alive'))).toBe(true)
    expect(withBeats).toBeLessThan(5 * 1024)
  }, 90_000)
})
