import type { Instance, LivenessState, Node } from '../model/index.ts'

/** Events of the liveness component that change what it says about a node. */
export const LIVENESS_EVENTS = ['node:alive', 'node:suspect', 'node:unreachable', 'node:sync'] as const
export type LivenessEvent = (typeof LIVENESS_EVENTS)[number]

/**
 * What the HTTP API uses of the failure detector (src/liveness): a node's state and when it was last
 * heard from, and events on every transition. `off` is used on close when present.
 */
export interface HttpLiveness {
  status(nodeId: string): LivenessState | undefined
  /** Local time the node was last heard from (beat or record), ms. */
  lastSeen(nodeId: string): number | undefined
  /** Whether the node's last beat carried this agent's replica digest. */
  inSync?(nodeId: string): boolean | undefined
  on(event: LivenessEvent, listener: () => void): unknown
  off?(event: LivenessEvent, listener: () => void): unknown
}

/**
 * A node as answered: `liveness` added, `lastHeartbeat` the later of the record's and the last beat,
 * `inSync` whether its last beat carried this agent's replica digest (the dashboard shows it).
 */
export type NodeView = Node & { liveness?: LivenessState; inSync?: boolean }

/**
 * Read-time decoration of stored entities with this agent's liveness view. Nothing here is written:
 * the stored status of an instance and the stored node record stay as their owners wrote them.
 */
export class LivenessOverlay {
  readonly #liveness: HttpLiveness | undefined
  #unreachableUrls: ReadonlySet<string> = new Set()

  constructor(liveness: HttpLiveness | undefined) {
    this.#liveness = liveness
  }

  get enabled(): boolean {
    return this.#liveness !== undefined
  }

  /** URLs of the nodes the detector calls unreachable, as of the last `refresh`. */
  get unreachableUrls(): ReadonlySet<string> {
    return this.#unreachableUrls
  }

  /**
   * Recomputes the unreachable node URLs from `nodes`. Returns whether the set changed (and with it
   * the status of the instances on those nodes).
   */
  refresh(nodes: readonly Node[]): boolean {
    const liveness = this.#liveness
    if (liveness === undefined) return false
    const next = new Set<string>()
    for (const node of nodes) if (liveness.status(node.id) === 'unreachable') next.add(node.url)
    const before = this.#unreachableUrls
    const changed = next.size !== before.size || [...next].some((url) => !before.has(url))
    this.#unreachableUrls = next
    return changed
  }

  /** The instance as answered: `Unreachable` when its node is unreachable. */
  instance(instance: Instance): Instance {
    if (instance.status === 'Unreachable' || instance.nodeUrl === undefined) return instance
    if (!this.#unreachableUrls.has(instance.nodeUrl)) return instance
    return { ...instance, status: 'Unreachable' }
  }

  node(node: Node): NodeView {
    const liveness = this.#liveness
    if (liveness === undefined) return node
    const seenMs = liveness.lastSeen(node.id)
    const recordMs = typeof node.lastHeartbeat === 'string' ? Date.parse(node.lastHeartbeat) : Number.NaN
    const view: NodeView = { ...node }
    if (seenMs !== undefined && (Number.isNaN(recordMs) || seenMs > recordMs))
      view.lastHeartbeat = new Date(seenMs).toISOString()
    const state = liveness.status(node.id)
    if (state !== undefined) view.liveness = state
    else delete view.liveness
    const inSync = liveness.inSync?.(node.id)
    if (inSync !== undefined) view.inSync = inSync
    else delete view.inSync
    return view
  }
}
