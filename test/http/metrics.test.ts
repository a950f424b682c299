import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { GossipStats } from '../../src/p2p/gossip.ts'
import { startServer, type TestServer } from './fixtures.ts'

const gossip: GossipStats = {
  messagesPublished: 7,
  bytesPublished: 3500,
  changesPublished: 9,
  messagesReceived: 11,
  changesReceived: 13,
  rejected: { oversized: 1, 'not-json': 0, 'bad-shape': 0, 'invalid-change': 2, drift: 3, 'rate-limited': 0 },
  outcomes: { applied: 10, 'rejected-drift': 3 },
}

describe('GET /metrics', () => {
  let s: TestServer
  let peers = 2
  beforeAll(async () => {
    s = await startServer({
      metricsSources: {
        peersConnected: () => peers,
        gossip: () => gossip,
        gossipHearsAll: () => true,
        antiEntropy: () => ({
          sessions: { 'in-sync': 4, repaired: 1, failed: 1 },
          entriesReceived: 20,
          entriesSent: 30,
          applied: { applied: 5, 'rejected-drift': 1 },
          failures: { timeout: 1 },
          staleResets: 0,
        }),
        liveness: () => ({ alive: 3, suspect: 1, unreachable: 0 }),
        beats: () => ({ outcomes: { accepted: 40, 'rejected-malformed': 2 }, stalledResets: 1 }),
        swimDatagrams: () => ({ accepted: 90, 'rejected-signature': 4 }),
      },
    })
  })
  afterAll(() => s.close())

  const scrape = async () => {
    const answer = await s.call('GET', '/metrics')
    expect(answer.status).toBe(200)
    expect(answer.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    return answer.text
  }
  const value = (text: string, series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `))
    return line === undefined ? undefined : Number(line.slice(series.length + 1))
  }

  it('exports replica, p2p, anti-entropy and liveness figures read at scrape time', async () => {
    await s.call('PUT', '/registry-svc/instance', { body: { url: 'http://127.0.0.1:1', slug: 'a' } })
    let text = await scrape()
    expect(value(text, 'p2p_registry_entities{kind="instance"}')).toBe(1)
    expect(value(text, 'p2p_registry_entities{kind="tombstone"}')).toBe(0)
    expect(value(text, 'p2p_registry_peers_connected')).toBe(2)
    expect(value(text, 'p2p_registry_gossip_messages_total{direction="published"}')).toBe(7)
    expect(value(text, 'p2p_registry_gossip_changes_total{direction="received"}')).toBe(13)
    expect(value(text, 'p2p_registry_gossip_rejected_total{reason="drift"}')).toBe(3)
    expect(value(text, 'p2p_registry_gossip_hears_all')).toBe(1)
    expect(value(text, 'p2p_registry_apply_outcomes_total{source="gossip",outcome="rejected-drift"}')).toBe(3)
    expect(value(text, 'p2p_registry_apply_outcomes_total{source="sync",outcome="applied"}')).toBe(5)
    expect(value(text, 'p2p_registry_anti_entropy_sessions_total{outcome="repaired"}')).toBe(1)
    expect(value(text, 'p2p_registry_anti_entropy_entries_total{direction="sent"}')).toBe(30)
    expect(value(text, 'p2p_registry_anti_entropy_failures_total{reason="timeout"}')).toBe(1)
    expect(value(text, 'p2p_registry_anti_entropy_counter_total{counter="staleResets"}')).toBe(0)
    expect(value(text, 'p2p_registry_nodes_by_liveness{state="suspect"}')).toBe(1)
    expect(value(text, 'p2p_registry_beats_total{outcome="accepted"}')).toBe(40)
    expect(value(text, 'p2p_registry_beats_total{outcome="rejected-malformed"}')).toBe(2)
    expect(value(text, 'p2p_registry_beat_streams_reset_total{reason="stalled"}')).toBe(1)
    expect(value(text, 'p2p_registry_swim_datagrams_total{outcome="accepted"}')).toBe(90)
    expect(value(text, 'p2p_registry_swim_datagrams_total{outcome="rejected-signature"}')).toBe(4)
    expect(text).toContain('p2p_registry_process_resident_memory_bytes')

    // Read again at the next scrape: nothing was pushed.
    peers = 5
    gossip.rejected.drift = 4
    await s.call('DELETE', '/registry-svc/instance/nope')
    text = await scrape()
    expect(value(text, 'p2p_registry_peers_connected')).toBe(5)
    expect(value(text, 'p2p_registry_gossip_rejected_total{reason="drift"}')).toBe(4)
  })

  it('counts HTTP requests by route pattern and status, with durations', async () => {
    const series = 'p2p_registry_http_requests_total{method="GET",route="/healthz",status_code="200"}'
    const before = value(await scrape(), series) ?? 0
    for (let i = 0; i < 3; i++) await s.call('GET', '/healthz')
    await s.call('DELETE', '/registry-svc/definition/some-secret-id')
    await s.call('GET', '/no/such/path/abc123')
    const text = await scrape()
    expect(value(text, series)).toBe(before + 3)
    expect(
      value(
        text,
        'p2p_registry_http_requests_total{method="DELETE",route="/registry-svc/definition/:id",status_code="404"}',
      ),
    ).toBe(1)
    expect(
      value(text, 'p2p_registry_http_requests_total{method="GET",route="unmatched",status_code="404"}'),
    ).toBe(1)
    expect(text).not.toContain('some-secret-id')
    expect(text).not.toContain('abc123')
    expect(
      value(text, 'p2p_registry_http_request_duration_seconds_count{method="GET",route="/healthz"}'),
    ).toBeGreaterThanOrEqual(3)
    expect(text).toMatch(
      /p2p_registry_http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/healthz"\} \d+/,
    )
  })

  it('lists every metric even when optional sources are absent', async () => {
    const bare = await startServer()
    try {
      const text = (await bare.call('GET', '/metrics')).text
      for (const name of [
        'entities',
        'peers_connected',
        'gossip_messages_total',
        'gossip_changes_total',
        'gossip_rejected_total',
        'gossip_hears_all',
        'apply_outcomes_total',
        'anti_entropy_sessions_total',
        'anti_entropy_entries_total',
        'nodes_by_liveness',
        'beats_total',
        'beat_streams_reset_total',
        'http_requests_total',
        'http_request_duration_seconds',
        'http_response_cache_total',
      ]) {
        expect(text).toContain(`# TYPE p2p_registry_${name} `)
      }
    } finally {
      await bare.close()
    }
  })
})
