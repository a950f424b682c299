import { ConnectionError, RegistryError } from './errors.ts'
import { readEvents } from './sse.ts'
import type {
  AgentHealth,
  Check,
  Definition,
  Instance,
  InstanceFilter,
  InstanceStatus,
  NodeRecord,
  Registration,
} from './types.ts'

export interface ClientOptions {
  /** The local agent. @default http://127.0.0.1:11337 */
  url?: string
  /** Bearer token (admin, or a service token for its slug). */
  token?: string
  /** Deadline of one API request, ms. @default 10000 */
  timeoutMs?: number
}

/**
 * A typed client of an agent's HTTP API (README, HTTP API). Every method throws `RegistryError` with the
 * agent's `{"error"}` text when it answers an error, and `ConnectionError` when it cannot be reached.
 * Uses only the platform's `fetch`: Node 20+ and browsers.
 */
export class RegistryClient {
  readonly url: string
  readonly #token: string | undefined
  readonly #timeoutMs: number

  constructor(options: ClientOptions = {}) {
    this.url = (options.url ?? 'http://127.0.0.1:11337').replace(/\/+$/, '')
    this.#token = options.token
    this.#timeoutMs = options.timeoutMs ?? 10_000
  }

  /** Instances matching every filter, by id. */
  async instances(filter: InstanceFilter = {}): Promise<Instance[]> {
    return (await this.#call<{ instances: Instance[] }>('GET', `/registry-svc/instances${query(filter)}`))
      .instances
  }

  /** Registers (or re-registers) an instance; resolves with it as stored. */
  async register(registration: Registration): Promise<Instance> {
    return (await this.#call<{ instance: Instance }>('PUT', '/registry-svc/instance', registration)).instance
  }

  async remove(id: string): Promise<void> {
    await this.#call('DELETE', `/registry-svc/instance/${encodeURIComponent(id)}`)
  }

  /** Renews an instance on the agent that owns it (ttl checks), optionally with a status. */
  async heartbeat(
    id: string,
    report: { status?: Exclude<InstanceStatus, 'Unknown'>; details?: string } = {},
  ): Promise<void> {
    await this.#call('PUT', `/registry-svc/instance/${encodeURIComponent(id)}/heartbeat`, report)
  }

  async definitions(): Promise<Definition[]> {
    return (await this.#call<{ definitions: Definition[] }>('GET', '/registry-svc/definitions')).definitions
  }

  async saveDefinition(definition: Definition): Promise<void> {
    await this.#call('PUT', '/registry-svc/definition', { definition })
  }

  async deleteDefinition(id: string): Promise<void> {
    await this.#call('DELETE', `/registry-svc/definition/${encodeURIComponent(id)}`)
  }

  /** Nodes by id (all of them without ids). */
  async nodes(ids: string[] = []): Promise<NodeRecord[]> {
    return (await this.#call<{ nodes: NodeRecord[] }>('POST', '/registry-svc/nodes', { ids })).nodes
  }

  async self(): Promise<NodeRecord> {
    return (await this.#call<{ node: NodeRecord }>('GET', '/registry-svc/node/self')).node
  }

  /** Deletes a node's record, by URL or id (a live node writes it again with its next heartbeat). */
  async removeNode(urlOrId: string): Promise<void> {
    await this.#call('DELETE', `/registry-svc/node/${encodeURIComponent(urlOrId)}`)
  }

  /** The agent's `/healthz`: up, with its replica's digest and counts. */
  async health(): Promise<AgentHealth> {
    return this.#call<AgentHealth>('GET', '/healthz')
  }

  /**
   * Follows `GET /registry-svc/instances/watch` (or the nodes watch): `onAnswer` gets the whole answer
   * now and after each change of it, until the stream ends (resolves) or `signal` aborts. Resumes from
   * `lastIndex` when given. Throws like the other methods when the watch cannot start.
   */
  async watch<T>(
    what: 'instances' | 'nodes',
    filter: InstanceFilter,
    onAnswer: (answer: T, index: number) => void,
    signal: AbortSignal,
    lastIndex?: number,
  ): Promise<void> {
    const path =
      what === 'instances' ? `/registry-svc/instances/watch${query(filter)}` : '/registry-svc/nodes/watch'
    const headers: Record<string, string> = { accept: 'text/event-stream', ...this.#auth() }
    if (lastIndex !== undefined) headers['last-event-id'] = String(lastIndex)
    const response = await this.#send(path, { headers, signal })
    if (!response.ok || response.body === null) throw await errorOf(response)
    await readEvents(response.body, (data, id) =>
      onAnswer((JSON.parse(data) as Record<string, T>)[what]!, Number(id)),
    )
  }

  #auth(): Record<string, string> {
    return this.#token ? { authorization: `Bearer ${this.#token}` } : {}
  }

  async #send(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(`${this.url}${path}`, init)
    } catch (err) {
      if ((init.signal as AbortSignal | undefined)?.aborted) throw err
      const cause = (err as { cause?: { code?: string; message?: string } }).cause
      throw new ConnectionError(
        `cannot reach the agent at ${this.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
        { cause: err },
      )
    }
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { ...this.#auth() }
    if (body !== undefined) headers['content-type'] = 'application/json'
    const response = await this.#send(path, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(this.#timeoutMs),
    })
    if (!response.ok) throw await errorOf(response)
    const text = await response.text()
    return (text === '' ? undefined : JSON.parse(text)) as T
  }
}

async function errorOf(response: Response): Promise<RegistryError> {
  const text = await response.text()
  let message = text || response.statusText
  try {
    message = (JSON.parse(text) as { error?: string }).error ?? message
  } catch {
    // Not JSON: the text as is.
  }
  return new RegistryError(response.status, message)
}

function query(filter: InstanceFilter): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(filter)) if (value !== undefined) params.set(key, String(value))
  return params.size > 0 ? `?${params}` : ''
}

export type { Check }
