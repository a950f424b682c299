import { EventEmitter } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import {
  buildApp,
  type HttpAppInit,
  type HttpLiveness,
  type LivenessState,
  listen,
  type MetricsSources,
} from '../../src/http/index.ts'
import { InstanceProber } from '../../src/liveness/index.ts'
import { type Node, parseNode } from '../../src/model/index.ts'
import { LevelStore } from '../../src/replica/level-store.ts'
import type { Replica } from '../../src/replica/replica.ts'
import type { Logger } from '../../src/support/logger.ts'
import { openReplica } from '../replica/fixtures.ts'

export const NODE_ID = 'node-a'
export const SELF_URL = 'http://127.0.0.1:11337'

/** A failure detector stand-in: states set by the test, a transition event for each change. */
export class FakeLiveness extends EventEmitter implements HttpLiveness {
  readonly states = new Map<string, LivenessState>()
  readonly seen = new Map<string, number>()

  status(nodeId: string): LivenessState | undefined {
    return this.states.get(nodeId)
  }

  lastSeen(nodeId: string): number | undefined {
    return this.seen.get(nodeId)
  }

  set(nodeId: string, state: LivenessState): void {
    this.states.set(nodeId, state)
    this.emit(`node:${state}`, { nodeId, lastSeenMs: this.seen.get(nodeId) ?? 0, previous: undefined })
  }
}

export interface TestServer {
  app: FastifyInstance
  replica: Replica
  /** The owner's checks (not started): what takes service heartbeats. */
  checks: InstanceProber
  /** `http://127.0.0.1:<port>` */
  url: string
  /** The replica's LevelDB directory. */
  dir: string
  /** Every log line the app wrote, parsed. */
  logs: Array<Record<string, unknown>>
  liveness: FakeLiveness | undefined
  /** A fetch against the server: JSON in, status + parsed body out. */
  call(method: string, path: string, options?: CallOptions): Promise<Answer>
  close(): Promise<void>
}

export interface CallOptions {
  /** JSON-encoded unless it is a string (sent as is). */
  body?: unknown
  headers?: Record<string, string>
}

export interface Answer {
  status: number
  headers: Headers
  text: string
  /** The parsed body; undefined when empty or not JSON. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read answers field by field
  json: any
}

export interface StartOptions {
  init?: HttpAppInit
  liveness?: boolean
  metricsSources?: Partial<MetricsSources>
  /** Reuse a LevelDB directory (durability tests); a fresh temp dir otherwise. */
  dir?: string
  /** The replica's limit per kind (`OB_MAX_ENTITIES`). */
  maxEntities?: number
}

/** A Fastify app on a real replica (LevelDB in a temp dir), listening on 127.0.0.1, port 0. */
export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'p2p-registry-http-')))
  const replica = await openReplica(NODE_ID, {
    store: new LevelStore({ path: dir }),
    now: Date.now,
    ...(options.maxEntities === undefined ? {} : { maxEntities: options.maxEntities }),
  })
  const logs: Array<Record<string, unknown>> = []
  const log = capturingLogger(logs)
  const liveness = options.liveness ? new FakeLiveness() : undefined
  // The owner's checks, not started (no probes): they take the service heartbeats of the API.
  const checks = new InstanceProber({}, { replica, log, selfUrl: SELF_URL })
  const app = await buildApp(
    { logRequests: true, ...options.init },
    {
      replica,
      self: { nodeId: NODE_ID, selfUrl: SELF_URL },
      log,
      liveness,
      checks,
      metricsSources: {
        replicaCounts: () => replica.counts(),
        peersConnected: () => 0,
        ...options.metricsSources,
      },
    },
  )
  const { url } = await listen(app, { host: '127.0.0.1', port: 0 })
  return {
    app,
    replica,
    checks,
    url,
    dir,
    logs,
    liveness,
    call: (method, path, callOptions) => call(url, method, path, callOptions),
    async close() {
      await app.close()
      await replica.close()
      if (options.dir === undefined) await rm(dir, { recursive: true, force: true })
    },
  }
}

export async function call(
  base: string,
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers }
  let body: string | undefined
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body)
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
      headers['content-type'] = 'application/json'
  }
  const response = await fetch(`${base}${path}`, { method, headers, body })
  const text = await response.text()
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.status, headers: response.headers, text, json }
}

function capturingLogger(into: Array<Record<string, unknown>>): Logger {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') into.push(JSON.parse(line))
      done()
    },
  })
  return pino({ level: 'debug' }, sink)
}

/** Writes a node record as its owner would (gossip from that node). */
export async function putNode(
  replica: Replica,
  record: Omit<Node, 'lastHeartbeat'> & { lastHeartbeat?: string },
) {
  const node = parseNode({ lastHeartbeat: new Date().toISOString(), ...record })
  const [outcome] = await replica.apply(
    [{ kind: 'node', id: node.id, version: { ts: Date.now(), c: 0, node: node.id }, value: node }],
    'gossip',
  )
  if (outcome !== 'applied') throw new Error(`node ${node.id} was ${outcome}`)
  return node
}

/** The state a failed request must leave untouched. */
export function snapshot(replica: Replica) {
  return { digest: replica.digest(), counts: replica.counts() }
}
