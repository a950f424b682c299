import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { describe, expect, it } from 'vitest'
import { withTempDir } from '../replica/fixtures.ts'

const BIN = new URL('../../src/cli/bin.ts', import.meta.url).pathname

interface LogLine {
  msg: string
  level: number
  [field: string]: unknown
}

/** Starts `p2p-registry agent` as a real process and collects its JSON log lines. */
function startAgent(env: Record<string, string>) {
  const child = spawn(process.execPath, [BIN, 'agent'], {
    env: {
      ...process.env,
      OB_MDNS: 'false',
      OB_P2P_LISTEN: '/ip4/127.0.0.1/tcp/0',
      OB_HTTP_ADDR: '127.0.0.1:0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: LogLine[] = []
  const waiters: Array<{ msg: string; resolve: (line: LogLine) => void }> = []
  createInterface({ input: child.stdout! }).on('line', (text) => {
    const line = JSON.parse(text) as LogLine
    lines.push(line)
    for (const w of waiters.filter((w) => w.msg === line.msg)) w.resolve(line)
  })
  let stderr = ''
  child.stderr!.on('data', (chunk) => {
    stderr += chunk
  })
  const waitFor = (msg: string, timeoutMs = 15_000): Promise<LogLine> => {
    const seen = lines.find((l) => l.msg === msg)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no "${msg}" log within ${timeoutMs} ms; stderr: ${stderr}`)),
        timeoutMs,
      )
      waiters.push({ msg, resolve: (line) => (clearTimeout(timer), resolve(line)) })
    })
  }
  return { child, lines, waitFor, stderr: () => stderr }
}

async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode
  const [code] = await once(child, 'exit')
  return code as number | null
}

describe('p2p-registry agent (process)', () => {
  it('opens its replica, keeps a generated node id across restarts, and stops cleanly on SIGTERM', async () => {
    await withTempDir(async (dir) => {
      const first = startAgent({ OB_DATA_DIR: dir })
      const opened = await first.waitFor('replica open')
      await first.waitFor('agent started')
      expect(opened.nodeId).toMatch(/^node_[A-Za-z0-9]{10}$/)
      expect(first.lines.some((l) => l.level === 40 && /OB_NODE_ID and OB_SELF_URL/.test(l.msg))).toBe(true)
      first.child.kill('SIGTERM')
      expect(await exitOf(first.child)).toBe(0)
      expect(first.lines.map((l) => l.msg)).toContain('agent stopped')

      const second = startAgent({ OB_DATA_DIR: dir })
      expect((await second.waitFor('replica open')).nodeId).toBe(opened.nodeId)
      // A signal during start-up is honoured once the agent is up.
      second.child.kill('SIGINT')
      expect(await exitOf(second.child)).toBe(0)
    })
  })

  it('refuses a bad setting with one clear line and exit code 2, touching nothing', async () => {
    await withTempDir(async (dir) => {
      const agent = startAgent({ OB_DATA_DIR: `${dir}/never`, OB_HEARTBEAT_MS: 'soon' })
      expect(await exitOf(agent.child)).toBe(2)
      expect(agent.stderr()).toBe(
        'p2p-registry agent: OB_HEARTBEAT_MS must be an integer from 100 to 3600000, got "soon"\n',
      )
      expect(agent.lines).toEqual([])
    })
  })
})
