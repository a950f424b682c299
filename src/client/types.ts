/**
 * The shapes of the agent's API as a client sees them (README, HTTP API). Written out here rather than
 * imported from the agent's model, so the client entry carries no server code.
 */
export type InstanceStatus = 'Unknown' | 'Healthy' | 'Degraded' | 'Unreachable' | 'Error'

export interface Check {
  type: 'tcp' | 'http' | 'ttl' | 'none'
  path?: string
  intervalMs?: number
  timeoutMs?: number
  ttlMs?: number
  deregisterAfterMs?: number
}

export interface Instance {
  id: string
  url: string
  scheme: string
  host?: string
  ip?: string
  port?: number
  path?: string
  slug?: string
  deploymentId?: string
  nodeUrl?: string
  tags?: string[]
  check?: Check
  status: InstanceStatus
  details?: string
  lastHeartbeat?: string
}

/** `PUT /registry-svc/instance`: an address (`url`, or scheme + host or ip + port), and the rest optional. */
export type Registration = Partial<
  Pick<
    Instance,
    | 'id'
    | 'url'
    | 'scheme'
    | 'host'
    | 'ip'
    | 'port'
    | 'path'
    | 'slug'
    | 'deploymentId'
    | 'nodeUrl'
    | 'tags'
    | 'check'
  >
>

export interface InstanceFilter {
  id?: string
  slug?: string
  url?: string
  host?: string
  ip?: string
  scheme?: string
  path?: string
  deploymentId?: string
  tag?: string
  status?: InstanceStatus
}

/** Used / total / percent of one resource (bytes for memory and disk). */
export interface Usage {
  used: number
  total: number
  percent: number
}

export interface NodeRecord {
  id: string
  url: string
  availabilityZone?: string
  region?: string
  lastHeartbeat?: string
  usage?: { cpu: Usage; memory: Usage; disk: Usage }
  gpus?: object[]
  /** This agent's view: heard from recently, silent a few beats, or silent long enough to be down. */
  liveness?: 'alive' | 'suspect' | 'unreachable'
  /** Whether the node's last beat carried this agent's replica digest (the two hold the same state). */
  inSync?: boolean
  [field: string]: unknown
}

/** `GET /registry-svc/services`: a slug with its instance counts by status. */
export interface ServiceSummary {
  slug: string
  instances: number
  statuses: Partial<Record<InstanceStatus, number>>
}

export interface Definition {
  id: string
  [field: string]: unknown
}

/** `GET /healthz`: the agent is up; its replica's digest and counts. */
export interface AgentHealth {
  status: 'ok'
  nodeId: string
  /** Equal on two agents exactly when their replicas hold the same state. */
  digest: string
  definitions: number
  instances: number
  nodes: number
  tombstones: number
  /** True while the agent sees most nodes unreachable and deletes nothing of other nodes. */
  selfPreservation?: boolean
  unreachableRatio?: number
  /** libp2p peers this agent is connected to. */
  peers?: number
}
