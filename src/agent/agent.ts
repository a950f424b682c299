import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { HybridClock } from '../replica/hlc.ts'
import { LevelStore } from '../replica/level-store.ts'
import { Replica } from '../replica/replica.ts'
import { type AgentConfig, defaultSelfUrl } from './config.ts'
import type { Logger } from './logger.ts'
import { resolveNodeId } from './node-id.ts'

/** How often tombstones past the grace period are purged. */
const PURGE_INTERVAL_MS = 60 * 60 * 1000

export interface Agent {
  readonly nodeId: string
  readonly selfUrl: string
  readonly replica: Replica
  stop(): Promise<void>
}

/**
 * Starts an agent: opens the replica in the data dir and keeps it tidy.
 * (Networking and the HTTP API are wired in here as they land.)
 */
export async function startAgent(config: AgentConfig, log: Logger): Promise<Agent> {
  await mkdir(config.dataDir, { recursive: true })
  const store = new LevelStore({ path: join(config.dataDir, 'db') })
  await store.open()
  const { id: nodeId, generated } = await resolveNodeId(config.nodeId, store)
  const selfUrl = config.selfUrl ?? defaultSelfUrl(config)
  if (generated || config.selfUrl === undefined) {
    log.warn(
      { nodeId, selfUrl },
      'OB_NODE_ID and OB_SELF_URL are not both set: fine for one machine, but a cluster needs an explicit id and a URL every node can reach',
    )
  }
  const clock = new HybridClock({ nodeId, maxDriftMs: config.maxDriftMs })
  const replica = await Replica.open({ store, clock, tombstoneGraceMs: config.tombstoneGraceMs })
  log.info(
    { nodeId, selfUrl, dataDir: config.dataDir, digest: replica.digest(), ...replica.counts() },
    'replica open',
  )

  const purge = setInterval(() => {
    replica.purgeTombstones().then(
      (purged) => purged > 0 && log.info({ purged }, 'purged expired tombstones'),
      (err: unknown) => log.error({ err }, 'tombstone purge failed'),
    )
  }, PURGE_INTERVAL_MS)

  let stopping: Promise<void> | undefined
  return {
    nodeId,
    selfUrl,
    replica,
    stop() {
      stopping ??= (async () => {
        clearInterval(purge)
        await replica.close()
        log.info({ nodeId }, 'agent stopped')
      })()
      return stopping
    },
  }
}
