import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Agent, startAgent } from '../../src/agent/agent.ts'
import { type AgentConfig, loadConfig } from '../../src/agent/config.ts'
import { CHANGES_TOPIC } from '../../src/model/wire.ts'
import { createLogger } from '../../src/support/logger.ts'
import { waitFor } from './wait.ts'

export interface TestAgent extends Agent {
  config: AgentConfig
  /** Stops the agent and starts it again on the same data dir. */
  restart(overrides?: Partial<AgentConfig>): Promise<TestAgent>
}

/** Config of an in-process test agent: loopback, ephemeral ports, no mDNS, quick timers. */
export function testConfig(
  dataDir: string,
  index: number,
  overrides: Partial<AgentConfig> = {},
): AgentConfig {
  return {
    ...loadConfig({}, {}),
    nodeId: `agent-${index}`,
    selfUrl: `http://127.0.0.1:${20000 + index}`,
    httpAddr: { host: '127.0.0.1', port: 0 },
    dnsAddr: { host: '127.0.0.1', port: 0 },
    p2pListen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false,
    heartbeatIntervalMs: 200,
    dataDir,
    logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...overrides,
  }
}

export async function startTestAgent(config: AgentConfig): Promise<TestAgent> {
  const agent = await startAgent(config, await createLogger(config.logLevel))
  return Object.assign(agent, {
    config,
    async restart(overrides: Partial<AgentConfig> = {}) {
      await agent.stop()
      return startTestAgent({ ...config, ...overrides })
    },
  })
}

/** Multiaddr (with /p2p/<id>) other agents can use as a seed. */
export function seedOf(agent: Agent): string {
  return agent.libp2p.getMultiaddrs()[0]!.toString()
}

export interface TestCluster {
  agents: TestAgent[]
  dirs: string[]
  /** Starts one more agent seeded with the first one. */
  add(overrides?: Partial<AgentConfig>): Promise<TestAgent>
  stop(): Promise<void>
}

/** Starts `size` agents in this process; all but the first use the first as their seed. */
export async function startCluster(size: number, overrides: Partial<AgentConfig> = {}): Promise<TestCluster> {
  const agents: TestAgent[] = []
  const dirs: string[] = []
  const cluster: TestCluster = {
    agents,
    dirs,
    async add(extra = {}) {
      const dir = await mkdtemp(join(tmpdir(), 'p2p-registry-agent-'))
      dirs.push(dir)
      const peers = agents.length > 0 ? [seedOf(agents[0]!)] : []
      const agent = await startTestAgent(testConfig(dir, dirs.length - 1, { peers, ...overrides, ...extra }))
      agents.push(agent)
      return agent
    },
    async stop() {
      await Promise.allSettled(agents.map((a) => a.stop()))
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
    },
  }
  for (let i = 0; i < size; i++) await cluster.add()
  return cluster
}

/** Waits until every agent's replica digest is the same. */
export async function waitConverged(agents: readonly Agent[], timeoutMs = 15_000): Promise<string> {
  return waitFor(
    'equal digests on all agents',
    () => {
      const digests = new Set(agents.map((a) => a.replica.digest()))
      return digests.size === 1 ? [...digests][0]! : undefined
    },
    { timeoutMs },
  )
}

/** Waits until every agent has gossip subscribers for the changes topic from each other agent. */
export async function waitMeshed(agents: readonly Agent[], timeoutMs = 15_000): Promise<void> {
  await waitFor(
    'every agent connected to every other with the changes topic',
    () =>
      agents.every((a) => {
        const subscribers = new Set(a.libp2p.services.pubsub.getSubscribers(CHANGES_TOPIC).map(String))
        return agents.every((b) => b === a || subscribers.has(b.libp2p.peerId.toString()))
      }),
    { timeoutMs },
  )
}
