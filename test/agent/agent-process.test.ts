import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, expect, it } from 'vitest'
import { withTempDir } from '../replica/fixtures.ts'
import { startAgentProcess as startAgent } from '../support/process-agent.ts'
import { waitFor } from '../support/wait.ts'

const ROOT = join(import.meta.dirname, '../..')

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

  it('stops when `npm start` gets SIGTERM: the signal reaches the agent, not only npm', async () => {
    await withTempDir(async (dir) => {
      const npm = spawn('npm', ['start', '--silent'], {
        cwd: ROOT,
        env: {
          ...process.env,
          OB_DATA_DIR: dir,
          OB_MDNS: 'false',
          OB_P2P_LISTEN: '/ip4/127.0.0.1/tcp/0',
          OB_HTTP_ADDR: '127.0.0.1:0',
          OB_DNS_ADDR: '127.0.0.1:0',
        },
        stdio: ['ignore', 'pipe', 'ignore'],
      })
      const started = new Promise<number>((resolve) => {
        createInterface({ input: npm.stdout! }).on('line', (line) => {
          if (line.includes('"agent started"')) resolve((JSON.parse(line) as { pid: number }).pid)
        })
      })
      const pid = await started
      const alive = () => {
        try {
          process.kill(pid, 0)
          return true
        } catch {
          return false
        }
      }
      npm.kill('SIGTERM')
      try {
        await waitFor('the agent to exit after npm got SIGTERM', () => !alive(), { timeoutMs: 10_000 })
      } finally {
        if (alive()) process.kill(pid, 'SIGKILL')
      }
    })
  }, 30_000)
})
