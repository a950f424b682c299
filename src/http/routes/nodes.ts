import { isIdentifier, type Node } from '../../model/index.ts'
import { NotFoundError } from '../errors.ts'
import {
  DeletedSchema,
  errorResponses,
  ListNodesBodySchema,
  NodeAnswerSchema,
  NodeListSchema,
  NodeUrlParamsSchema,
  NoQuerySchema,
} from '../schemas.ts'
import type { RegistryApp, RouteDeps } from '../types.ts'
import { watchRoute } from './watch-route.ts'

const tags = ['nodes']

export function nodeRoutes(app: RegistryApp, { replica, self, read, watches }: RouteDeps): void {
  watchRoute(app, watches, '/registry-svc/nodes/watch', 'nodes', () => read.indexedNodes(), {
    operationId: 'watchNodes',
    summary: 'Watch the node list (Server-Sent Events)',
    description:
      'The first event at once, then one on every change of membership, liveness or a node record (not on every beat: lastHeartbeat is the record’s).',
    tags,
  })

  // A read, as in 1Backend (a POST only to carry the id list): open without a token.
  app.post(
    '/registry-svc/nodes',
    {
      schema: {
        operationId: 'listNodes',
        summary: 'List nodes, all of them or those with the given ids',
        tags,
        querystring: NoQuerySchema,
        body: ListNodesBodySchema,
        response: { 200: NodeListSchema, ...errorResponses(400, 413, 415) },
      },
      // No body (or JSON null) means "every node", like `{}`.
      preValidation: (request, _reply, done) => {
        request.body ??= {}
        done()
      },
    },
    (request, reply) => {
      reply.send({ nodes: read.nodes(request.body.ids) })
    },
  )

  app.get(
    '/registry-svc/node/self',
    {
      schema: {
        operationId: 'selfNode',
        summary: "This agent's own node record",
        tags,
        querystring: NoQuerySchema,
        response: { 200: NodeAnswerSchema },
      },
    },
    (_request, reply) => {
      reply.send({ node: read.node(self.nodeId) ?? read.unrecordedNode(self.nodeId, self.selfUrl) })
    },
  )

  app.delete(
    '/registry-svc/node/:url',
    {
      config: { mutating: true },
      schema: {
        operationId: 'deleteNode',
        summary: 'Delete a node record (a live node writes it again with its next heartbeat)',
        tags,
        querystring: NoQuerySchema,
        security: [{ bearerAuth: [] }],
        params: NodeUrlParamsSchema,
        response: { 204: DeletedSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const { url } = request.params
      const node: Node | undefined =
        replica.nodeByUrl(url) ?? (isIdentifier(url) ? replica.get('node', url) : undefined)
      if (node === undefined || (await replica.remove('node', node.id)) === undefined)
        throw new NotFoundError('node', url)
      return reply.code(204).send(null)
    },
  )
}
