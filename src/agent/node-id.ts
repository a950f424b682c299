import { randomBytes } from 'node:crypto'
import type { ReplicaStore } from '../replica/store.ts'

const META_NODE_ID = 'nodeId'
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** `node_` + 10 random letters and digits, like 1Backend's generated ids. */
export function generateNodeId(): string {
  const bytes = randomBytes(10)
  let id = 'node_'
  for (const byte of bytes) id += ALPHABET[byte % ALPHABET.length]
  return id
}

/**
 * The configured id, else the one generated on an earlier start, else a new one — kept in the data
 * dir so the node keeps its identity (and its own record) across restarts.
 */
export async function resolveNodeId(
  configured: string | undefined,
  store: Pick<ReplicaStore, 'getMeta' | 'putMeta'>,
) {
  const stored = await store.getMeta(META_NODE_ID)
  const id = configured ?? stored ?? generateNodeId()
  if (id !== stored) await store.putMeta(META_NODE_ID, id)
  return { id, generated: configured === undefined && stored === undefined }
}
