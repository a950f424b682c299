import { describe, expect, it } from 'vitest'
import { withTempDir } from '../replica/fixtures.ts'
import { startAgentProcess as startAgent } from '../support/process-agent.ts'

describe('p2p-registry agent (process)', () => {
  it('opens its replica, keeps a generated node id across restarts, and stops cleanly on SIGTERM', async () => {
    await withTempDir(async (dir) => {
      const first = startAgent({ OB_DATA_DIR: dir })
      const opened = await first.waitFor('replica open')
      await first.waitFor('agent started')
      expect(opened.nodeId).toMatch(/^node_[A-Za-z0-9]{10}$/)
      expect(first.lines.some((l) => l.level === 40 && /OB_NODE_ID and OB_SELF_URL/.test(l.msg))).toBe(true)
      first.child.kill('SIGTERM')
      expect(await first.exited()).toBe(0)
      expect(first.lines.map((l) => l.msg)).toContain('agent stopped')

      const second = startAgent({ OB_DATA_DIR: dir })
      expect((await second.waitFor('replica open')).nodeId).toBe(opened.nodeId)
      // A signal during start-up is honoured once the agent is up.
      second.child.kill('SIGINT')
      expect(await second.exited()).toBe(0)
    })
  })

  it('refuses a bad setting with one clear line and exit code 2, touching nothing', async () => {
    await withTempDir(async (dir) => {
      const agent = startAgent({ OB_DATA_DIR: `${dir}/never`, OB_HEARTBEAT_MS: 'soon' })
      expect(await agent.exited()).toBe(2)
      expect(agent.stderr()).toBe(
        'p2p-registry agent: OB_HEARTBEAT_MS must be an integer from 100 to 3600000, got "soon"\n',
      )
      expect(agent.lines).toEqual([])
    })
  })
})
