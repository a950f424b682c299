import { describe, expect, it } from 'vitest'
import { withTempDir } from '../replica/fixtures.ts'
import { startAgentUp } from '../support/process-agent.ts'
import { waitFor } from '../support/wait.ts'

async function put(url: string, n: number): Promise<string | undefined> {
  try {
    const response = await fetch(`${url}/registry-svc/instance`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: `http://127.7.${n >> 8}.${n & 255}:8080`, slug: 'kill-svc' }),
    })
    if (response.status !== 201) return undefined
    return ((await response.json()) as { instance: { id: string } }).instance.id
  } catch {
    return undefined // the agent died mid-request: not acknowledged
  }
}

const health = async (url: string) =>
  (await (await fetch(`${url}/healthz`)).json()) as { digest: string; instances: number }

describe('kill -9 of an agent process', () => {
  it('loses nothing it acknowledged, and converges with the cluster after a restart on the same data dir', async () => {
    await withTempDir(async (dirA) => {
      await withTempDir(async (dirB) => {
        const b = await startAgentUp({ OB_DATA_DIR: dirB, OB_NODE_ID: 'agent-b', OB_HEARTBEAT_MS: '300' })
        const a = await startAgentUp({
          OB_DATA_DIR: dirA,
          OB_NODE_ID: 'agent-a',
          OB_HEARTBEAT_MS: '300',
          OB_PEERS: b.multiaddr,
        })
        try {
          // Writes stream to A, a few in flight at a time, until A is killed in the middle of them.
          const acknowledged: string[] = []
          let n = 0
          const writer = (async () => {
            for (;;) {
              const batch = await Promise.all([n++, n++, n++, n++].map((i) => put(a.url, i)))
              const ok = batch.filter((id): id is string => id !== undefined)
              acknowledged.push(...ok)
              if (ok.length < batch.length) return
            }
          })()
          await waitFor('some writes acknowledged', () => acknowledged.length >= 200)
          a.child.kill('SIGKILL')
          await writer
          expect(await a.exited()).toBeNull()

          const again = await startAgentUp({
            OB_DATA_DIR: dirA,
            OB_NODE_ID: 'agent-a',
            OB_HEARTBEAT_MS: '300',
            OB_PEERS: b.multiaddr,
          })
          try {
            const listed = await (await fetch(`${again.url}/registry-svc/instances?slug=kill-svc`)).json()
            const ids = new Set((listed as { instances: Array<{ id: string }> }).instances.map((i) => i.id))
            // Read straight after the restart, before any sync: LevelDB kept every acknowledged write.
            expect(acknowledged.filter((id) => !ids.has(id))).toEqual([])
            await waitFor(
              'A and B hold the same state',
              async () => {
                const [ha, hb] = await Promise.all([health(again.url), health(b.url)])
                return ha.digest === hb.digest && hb.instances >= acknowledged.length
              },
              { timeoutMs: 20_000 },
            )
          } finally {
            again.child.kill('SIGTERM')
            await again.exited()
          }
        } finally {
          a.child.kill('SIGKILL')
          b.child.kill('SIGTERM')
          await b.exited()
        }
      })
    })
  })
})
