import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger'

/**
 * Version of the API contract in `info.version` (not the package's): raised when a route, field or
 * answer changes, so clients can tell documents apart.
 */
export const API_VERSION = '1.0.0'

/**
 * @fastify/swagger options: an OpenAPI 3.1 document (JSON Schema 2020-12, so the TypeBox schemas go in
 * unchanged: `const`, `patternProperties`, `examples`) generated from the route schemas.
 */
export const OPENAPI_OPTIONS: FastifyDynamicSwaggerOptions = {
  openapi: {
    openapi: '3.1.0',
    info: {
      title: 'p2p-registry agent API',
      version: API_VERSION,
      description:
        'The local API of a p2p-registry agent, wire-compatible with 1Backend\'s Registry Svc. Reads are answered from the local replica; writes answer once durable in LevelDB and are then gossiped to every agent. Every error is `{"error": "<message>"}`.',
    },
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: 'Needed by mutating requests only when the agent has an API token (OB_API_TOKEN)',
        },
      },
    },
  },
  transformObject: (documents) => {
    const doc = 'openapiObject' in documents ? documents.openapiObject : documents.swaggerObject
    // The node list takes `{"ids": [...]}` or no body at all; @fastify/swagger marks every body required.
    const paths = doc.paths as
      | Record<string, Record<string, { requestBody?: { required?: boolean } }>>
      | undefined
    const listNodes = paths?.['/registry-svc/nodes']?.post
    if (listNodes?.requestBody) listNodes.requestBody.required = false
    return doc
  },
}
