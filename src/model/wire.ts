/**
 * Every wire format of p2p-registry in one place: the protocol ids and topic names, with what changed
 * between their versions, and the limits that shape what crosses the wire. `docs/protocols.md` describes
 * each format; `test/p2p/wire-formats.test.ts` pins an encoded example of each, so a change of shape
 * fails there until it gets a new id or a tolerant reader.
 *
 * Rules (agents of two releases run side by side during every rolling upgrade):
 * - A field may be added when old readers ignore or keep it (every reader here is tolerant: unknown
 *   fields of a change are ignored, unknown fields of an entity are kept). Message `type` values, entity
 *   kinds and instance statuses are append-only.
 * - A change of meaning (an old reader that accepts the bytes would merge them wrongly) gets a new id,
 *   and the agent speaks both ids for at least one release.
 *
 * It lives in model, the lowest domain layer, because the replica (digest leaves), p2p and liveness all
 * read it.
 */

/**
 * Gossipsub topic of entity changes: `{"changes": [Change, ...]}` (JSON).
 * - `/p2p-registry/changes/1`: signed messages.
 * - `/p2p-registry/changes/2`: unsigned (libp2p-node.ts says why); changes may carry `basedOn`.
 */
export const CHANGES_TOPIC = '/p2p-registry/changes/2'

/**
 * Gossipsub topic that carries no messages: an agent subscribes to it while it is connected, on the
 * changes topic, to every live node, and its peers then stop forwarding changes to it
 * (`p2p/gossip-reach.ts`). Since round 2, session 6; earlier releases ignore it.
 */
export const REACH_TOPIC = '/p2p-registry/hears-all/1'

/**
 * Stream protocol of liveness beats, one hop to directly connected peers (`p2p/frame-channel.ts`,
 * `liveness/beat.ts`): length-prefixed JSON frames.
 * - `/p2p-registry/beats/1` was a gossipsub topic; `/p2p-registry/beats/2.0.0` replaced it.
 * - Since round 2, session 2, beats may carry `g` (the sender's signature of its beat time) and `r`
 *   (relayed nodes' own signatures), added without a new id: every release since b1fbe5a ignores keys
 *   it does not know. Relays of a node whose record lists `beat` in `signs` count only with `r`.
 */
export const BEATS_PROTOCOL = '/p2p-registry/beats/2.0.0'

/**
 * Stream protocol of SWIM failure detection (`liveness/swim/`): length-prefixed JSON frames, one
 * message each (`liveness/swim/codec.ts`), to any member, dialled when not connected. Spoken by nodes
 * whose record lists `alive` in `signs`; beats go on for nodes of the previous release.
 */
export const SWIM_PROTOCOL = '/p2p-registry/swim/1.0.0'

/**
 * Anti-entropy request/response protocol on libp2p streams (`p2p/sync/`): length-prefixed JSON frames
 * `hello`, `get-digests`, `digests`, `get-entries`, `entries`, `done`, `error`.
 * - `1.0.0`: entries are `{kind, id, version, value}`. Since 2026-11-28 (commit 2e25faf) an entry may
 *   also carry `basedOn` (a status write), added without a new id: readers of before that date reject
 *   such an entry and keep their older copy until the next plain write of that entity. Every release
 *   since reads it, and readers now ignore fields they do not know instead of rejecting the entry.
 */
export const SYNC_PROTOCOL = '/p2p-registry/sync/1.0.0'

/**
 * Largest gossip message accepted, bytes. A batch of changes is split to stay under it; anything
 * larger from a peer is dropped and counted. 1 MiB + 64 KiB: the HTTP body cap plus the envelope, so
 * any accepted write fits.
 */
export const MAX_GOSSIP_MESSAGE_BYTES = 1024 * 1024 + 64 * 1024

/** Largest anti-entropy frame, bytes. Entry lists are streamed in frames below this. */
export const MAX_SYNC_FRAME_BYTES = 4 * 1024 * 1024

/**
 * Most entries one `entries` frame may hold. Senders fill frames to about 256 KiB, a few thousand
 * entries at most; the cap keeps a frame of tiny junk items from costing seconds of validation.
 */
export const MAX_ENTRIES_PER_FRAME = 10_000

/** Levels descended per `get-digests` round trip: 16 children per differing node, 12 leaf levels in 3 rounds. */
export const MAX_LEVELS_PER_ROUND = 4

/**
 * Depth of the digest tree, in bits of key hash: 4,096 leaves. Both sides of a sync must agree, so a
 * change needs a new sync protocol id.
 */
export const LEAF_BITS = 12

/**
 * Largest beat accepted from a peer, bytes. A beat is about 70 bytes plus about 15 per relayed node
 * (`h`), so this holds the relays of a cluster of a thousand nodes or more; the sender stops adding
 * relays before it (`encodeBeat`). A larger frame resets the sender's stream.
 */
export const MAX_BEAT_BYTES = 64 * 1024
