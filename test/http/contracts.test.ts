import { describe, expectTypeOf, it } from 'vitest'
import type { HttpLiveness, MetricsSources } from '../../src/http/index.ts'
import type { FailureDetector } from '../../src/liveness/failure-detector.ts'
import type { Gossip } from '../../src/p2p/gossip.ts'
import type { AntiEntropyStats } from '../../src/p2p/sync/report.ts'

// Compile-time checks (npm run typecheck) that the agent's units plug into buildApp as they are.
describe('component contracts', () => {
  it('the failure detector is an HttpLiveness; gossip and anti-entropy stats are metrics sources', () => {
    expectTypeOf<FailureDetector>().toExtend<HttpLiveness>()
    expectTypeOf<Gossip['stats']>().toExtend<ReturnType<NonNullable<MetricsSources['gossip']>>>()
    expectTypeOf<AntiEntropyStats>().toExtend<ReturnType<NonNullable<MetricsSources['antiEntropy']>>>()
  })
})
