/**
 * Wire identifiers of p2p-registry. Versioned: a change that old agents cannot read gets a new
 * version string, never a silent change of meaning. Message `type` values are append-only.
 */

/**
 * Gossipsub topic carrying batches of entity changes (puts and tombstones). Version 2: messages are
 * unsigned (`libp2p-node.ts` says why); version 1 was signed.
 */
export const CHANGES_TOPIC = '/p2p-registry/changes/2'

/**
 * Stream protocol carrying liveness beats one hop, to directly connected peers (`beat-channel.ts`);
 * version 2 replaced the gossipsub topic `/p2p-registry/beats/1`.
 */
export const BEATS_PROTOCOL = '/p2p-registry/beats/2.0.0'

/** Anti-entropy request/response protocol on libp2p streams. */
export const SYNC_PROTOCOL = '/p2p-registry/sync/1.0.0'

/**
 * Largest gossip message accepted, bytes. A batch of changes is split to stay under it; anything
 * larger from a peer is dropped and counted. 1 MiB: the HTTP body cap, so any accepted write fits.
 */
export const MAX_GOSSIP_MESSAGE_BYTES = 1024 * 1024 + 64 * 1024

/** Largest anti-entropy frame, bytes. Entry lists are streamed in frames below this. */
export const MAX_SYNC_FRAME_BYTES = 4 * 1024 * 1024
