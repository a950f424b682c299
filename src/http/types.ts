import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyBaseLogger, FastifyInstance, RawServerDefault } from 'fastify'
import type { Replica } from '../replica/replica.ts'
import type { ReadModel } from './read-model.ts'
import type { WatchHub } from './watch-hub.ts'

/** The Fastify instance the routes are registered on: TypeBox schemas type the requests. */
export type RegistryApp = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>

/** This agent's identity, as the API reports and defaults it. */
export interface SelfIdentity {
  nodeId: string
  /** Default `nodeUrl` of instances registered here; answered by `GET /registry-svc/node/self`. */
  selfUrl: string
}

/** What the HTTP API uses of the owner's checks (`InstanceProber`): service heartbeats. */
export interface HttpChecks {
  renew(
    id: string,
    given?: { status?: 'Healthy' | 'Degraded' | 'Unreachable' | 'Error'; details?: string },
  ): 'renewed' | 'unknown' | 'not-owned'
}

/** What the HTTP API shows of the lifecycle (`Reaper`). */
export interface HttpLifecycle {
  readonly selfPreserving: boolean
  readonly unreachableRatio: number
}

/** What the route modules use. */
export interface RouteDeps {
  replica: Replica
  self: SelfIdentity
  read: ReadModel
  checks: HttpChecks | undefined
  lifecycle: HttpLifecycle | undefined
  watches: WatchHub
  /** libp2p peers connected now (`/healthz`). */
  peersConnected: () => number
}
