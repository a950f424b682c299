import { EntryReceiver, sendEntries } from './entries.ts'
import { SyncSessionError } from './errors.ts'
import type { FramedStream } from './framed-stream.ts'
import { entriesIn, entryCount, rootDigest, type SessionContext, tooLarge } from './session.ts'
import { childDigests } from './tree.ts'

/**
 * Requests one session may make after `hello`: a full walk takes 3 `get-digests` and then one
 * `get-entries`, which ends the session. More is a confused or hostile client.
 */
const MAX_REQUESTS = 4

/**
 * The answering side of a session: answers `hello`, `get-digests` and `get-entries`, merges the
 * entries the client pushes back and ends with `done` (or right after `hello` when the roots are
 * equal, or when the client closes the stream). Progress is recorded in `ctx.result`; the outcome
 * stays `in-sync` unless the client asks for entries.
 */
export async function runServerSession(stream: FramedStream, ctx: SessionContext): Promise<void> {
  const { replica, log, result } = ctx
  const hello = await stream.expect('hello')
  const root = rootDigest(replica.digestTree)
  await stream.send({ type: 'hello', digest: root, entries: entryCount(replica) })
  result.rounds++
  // Equal roots end the session: the client closes without a request.
  if (hello.digest === root) return

  for (let requests = 0; ; requests++) {
    const frame = await stream.receive()
    if (frame === undefined) return
    if (requests >= MAX_REQUESTS)
      throw new SyncSessionError('unexpected-frame', `more than ${MAX_REQUESTS} requests`)
    switch (frame.type) {
      case 'get-digests': {
        const { parentLevel, parents, level } = frame
        await stream.send({
          type: 'digests',
          level,
          digests: childDigests(replica.digestTree, parentLevel, parents, level),
        })
        result.rounds++
        break
      }
      case 'get-entries': {
        result.outcome = 'repaired'
        result.entriesSent += await sendEntries(
          stream,
          entriesIn(replica, frame.ranges),
          ctx.maxFrameBytes,
          tooLarge(log),
        )
        const receiver = new EntryReceiver({ replica, log, remember: false, tally: result })
        for (let last = false; !last; ) {
          const pushed = await stream.expect('entries')
          await receiver.take(pushed.entries)
          last = pushed.last
        }
        await receiver.finish()
        await stream.send({ type: 'done', digest: rootDigest(replica.digestTree) })
        result.rounds++
        return
      }
      case 'error':
        throw new SyncSessionError('remote-error', `peer: ${frame.reason}`)
      default:
        throw new SyncSessionError('unexpected-frame', `got ${frame.type} where a request was expected`)
    }
  }
}
