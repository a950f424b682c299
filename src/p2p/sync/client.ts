import { MAX_LEVELS_PER_ROUND } from '../../model/wire.ts'
import { EntryReceiver, newerThanReceived, sendEntries } from './entries.ts'
import { SyncSessionError } from './errors.ts'
import type { FramedStream } from './framed-stream.ts'
import { entriesIn, entryCount, rootDigest, type SessionContext, tooLarge } from './session.ts'
import { ALL_LEAVES, differingChildren, leavesToRanges, shouldExchangeAll, walkLevels } from './tree.ts'

export interface ClientOptions {
  /** Take the peer's entries but send none back (a replica just reset by the stale-node rule). */
  pullOnly: boolean
}

/**
 * The dialling side of a session: compares roots, walks the digest tree down to the differing leaves,
 * pulls the peer's entries there and merges them, then pushes back what the peer lacks or holds older.
 * Progress is recorded in `ctx.result`. See `messages.ts` for the frames.
 */
export async function runClientSession(
  stream: FramedStream,
  ctx: SessionContext,
  options: ClientOptions,
): Promise<void> {
  const { replica, log, result } = ctx
  const ours = entryCount(replica)
  const root = rootDigest(replica.digestTree)
  await stream.send({ type: 'hello', digest: root, entries: ours })
  const hello = await stream.expect('hello')
  result.rounds++
  if (hello.digest === root) return

  let ranges = ALL_LEAVES
  if (!shouldExchangeAll(ours, hello.entries)) {
    let parentLevel = 0
    let parents = [0]
    for (const level of walkLevels(MAX_LEVELS_PER_ROUND)) {
      await stream.send({ type: 'get-digests', parentLevel, parents, level })
      const answer = await stream.expect('digests')
      result.rounds++
      const expected = parents.length * 2 ** (level - parentLevel)
      if (answer.level !== level || answer.digests.length !== expected) {
        throw new SyncSessionError(
          'malformed-frame',
          `digests answer has level ${answer.level} and ${answer.digests.length} digests, expected level ${level} and ${expected}`,
        )
      }
      parents = differingChildren(replica.digestTree, parentLevel, parents, level, answer.digests)
      parentLevel = level
      // The root differed but no subtree does any more: gossip closed the gap meanwhile.
      if (parents.length === 0) return
    }
    ranges = leavesToRanges(parents)
  }

  result.outcome = 'repaired'
  await stream.send({ type: 'get-entries', ranges })
  const receiver = new EntryReceiver({ replica, log, remember: !options.pullOnly, tally: result })
  for (let last = false; !last; ) {
    const frame = await stream.expect('entries')
    await receiver.take(frame.entries)
    last = frame.last
  }
  await receiver.finish()
  result.rounds++

  // Compared after merging: where the peer's entry won, ours is now the same and is not sent back.
  const push = options.pullOnly ? [] : newerThanReceived(entriesIn(replica, ranges), receiver.byKey)
  result.entriesSent = await sendEntries(stream, push, ctx.maxFrameBytes, tooLarge(log))
  await stream.expect('done')
  result.rounds++
}
