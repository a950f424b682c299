import { Type } from '@sinclair/typebox'
import type { HttpMetrics } from '../metrics.ts'
import { HealthSchema } from '../schemas.ts'
import type { RegistryApp, RouteDeps } from '../types.ts'

const tags = ['operations']

export function operationRoutes(
  app: RegistryApp,
  { replica, self, lifecycle, peersConnected }: RouteDeps,
  metrics: HttpMetrics,
): void {
  app.get(
    '/healthz',
    {
      config: { open: true },
      schema: {
        operationId: 'healthz',
        summary: 'Liveness of this agent, with its replica counts',
        tags,
        response: { 200: HealthSchema },
      },
    },
    (_request, reply) => {
      reply.send({
        status: 'ok' as const,
        nodeId: self.nodeId,
        digest: replica.digest(),
        ...replica.counts(),
        peers: peersConnected(),
        ...(lifecycle === undefined
          ? {}
          : { selfPreservation: lifecycle.selfPreserving, unreachableRatio: lifecycle.unreachableRatio }),
      })
    },
  )

  app.get(
    '/metrics',
    {
      schema: {
        operationId: 'metrics',
        summary: 'Prometheus metrics',
        tags,
        response: {
          200: {
            description: 'Prometheus text exposition format 0.0.4',
            content: { 'text/plain': { schema: Type.String() } },
          },
        },
      },
    },
    async (_request, reply) => {
      const text = await metrics.registry.metrics()
      return reply.type(metrics.registry.contentType).send(text)
    },
  )

  app.get(
    '/openapi.json',
    {
      config: { open: true },
      schema: {
        operationId: 'openapi',
        summary: 'This OpenAPI 3.1 document',
        tags,
        response: {
          200: Type.Object(
            { openapi: Type.String(), info: Type.Object({}), paths: Type.Object({}) },
            { additionalProperties: true },
          ),
        },
      },
    },
    (_request, reply) => {
      // The generated document is built once and cached by @fastify/swagger.
      reply.send(app.swagger() as unknown as { openapi: string; info: object; paths: object })
    },
  )
}
