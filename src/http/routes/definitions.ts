import { parseDefinition } from '../../model/index.ts'
import { NotFoundError } from '../errors.ts'
import {
  CreatedSchema,
  DefinitionListSchema,
  DeletedSchema,
  errorResponses,
  IdParamsSchema,
  NoQuerySchema,
  SaveDefinitionBodySchema,
} from '../schemas.ts'
import type { RegistryApp, RouteDeps } from '../types.ts'
import { sendJsonBytes } from './send.ts'

const tags = ['definitions']
const security = [{ bearerAuth: [] }]

export function definitionRoutes(app: RegistryApp, { replica, read }: RouteDeps): void {
  app.put(
    '/registry-svc/definition',
    {
      config: { mutating: true },
      schema: {
        operationId: 'saveDefinition',
        summary: 'Save a service definition (normal or short form)',
        tags,
        querystring: NoQuerySchema,
        security,
        body: SaveDefinitionBodySchema,
        response: { 201: CreatedSchema, ...errorResponses(400, 401, 413, 415) },
      },
    },
    async (request, reply) => {
      const definition = parseDefinition(request.body.definition, 'definition')
      await replica.put('definition', definition)
      return reply.code(201).send({})
    },
  )

  app.get(
    '/registry-svc/definitions',
    {
      schema: {
        operationId: 'listDefinitions',
        summary: 'List service definitions, ordered by id',
        tags,
        querystring: NoQuerySchema,
        response: { 200: DefinitionListSchema },
      },
    },
    (_request, reply) => {
      sendJsonBytes(reply, read.definitionsAnswer())
    },
  )

  app.delete(
    '/registry-svc/definition/:id',
    {
      config: { mutating: true },
      schema: {
        operationId: 'deleteDefinition',
        summary: 'Delete a service definition',
        tags,
        querystring: NoQuerySchema,
        security,
        params: IdParamsSchema,
        response: { 204: DeletedSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      if ((await replica.remove('definition', id)) === undefined) throw new NotFoundError('definition', id)
      return reply.code(204).send(null)
    },
  )
}
