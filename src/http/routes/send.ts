/** The part of a reply `sendJsonBytes` uses (any route's typed reply has it). */
interface BytesReply {
  type(contentType: string): { send(payload: Buffer): unknown }
}

/**
 * Sends already-serialized JSON. A Buffer goes out as is: Fastify neither serializes nor copies it,
 * so a cached answer costs no JSON work per request.
 */
export function sendJsonBytes(reply: unknown, bytes: Buffer): void {
  ;(reply as BytesReply).type('application/json').send(bytes)
}
