import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'

/** The bundle `npm run build` makes (npm test builds first): process tests run what ships. */
export const BIN = new URL('../../dist/p2p-registry.mjs', import.meta.url).pathname

export interface LogLine {
  msg: string
  level: number
  [field: string]: unknown
}

export interface AgentProcess {
  child: ChildProcess
  lines: LogLine[]
  /** Resolves with the first log line with this message (already seen or yet to come). */
  waitFor(msg: string, timeoutMs?: number): Promise<LogLine>
  stderr(): string
  /** Resolves with the exit code (null when killed by a signal). */
  exited(): Promise<number | null>
}

/** How to start the agent when not as `node <bin> agent` (e.g. `npx p2p-registry agent` in a project). */
export interface Launch {
  command: string
  args: string[]
  cwd: string
}

/**
 * Starts `p2p-registry agent` as a real process (loopback, ephemeral ports, no mDNS unless overridden)
 * and collects its JSON log lines. `bin` is this build's bundle unless another release's is given.
 * A `launch` runs in a process group of its own, so `kill(-pid)` stops what it started too.
 */
export function startAgentProcess(env: Record<string, string>, bin = BIN, launch?: Launch): AgentProcess {
  const child = spawn(launch?.command ?? process.execPath, launch?.args ?? [bin, 'agent'], {
    cwd: launch?.cwd,
    detached: launch !== undefined,
    env: {
      ...process.env,
      OB_MDNS: 'false',
      OB_P2P_LISTEN: '/ip4/127.0.0.1/tcp/0',
      OB_HTTP_ADDR: '127.0.0.1:0',
      OB_DNS_ADDR: '127.0.0.1:0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: LogLine[] = []
  const waiters: Array<{ msg: string; resolve: (line: LogLine) => void }> = []
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: LogLine
    try {
      line = JSON.parse(text) as LogLine
    } catch {
      return
    }
    lines.push(line)
    for (const w of waiters.filter((w) => w.msg === line.msg)) w.resolve(line)
  })
  let stderr = ''
  child.stderr!.on('data', (chunk) => {
    stderr += chunk
  })
  const exit = once(child, 'exit').then(([code]) => code as number | null)
  return {
    child,
    lines,
    stderr: () => stderr,
    exited: () => (child.exitCode !== null ? Promise.resolve(child.exitCode) : exit),
    waitFor(msg, timeoutMs = 20_000) {
      const seen = lines.find((l) => l.msg === msg)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no "${msg}" log within ${timeoutMs} ms; stderr: ${stderr}`)),
          timeoutMs,
        )
        waiters.push({
          msg,
          resolve: (line) => {
            clearTimeout(timer)
            resolve(line)
          },
        })
      })
    },
  }
}

/** Starts an agent process and waits until it is up; returns it with its HTTP URL and peer multiaddr. */
export async function startAgentUp(env: Record<string, string>, bin = BIN) {
  const agent = startAgentProcess(env, bin)
  const started = await agent.waitFor('agent started')
  const p2p = await agent.waitFor('p2p node started')
  return { ...agent, url: started.http as string, multiaddr: (p2p.listen as string[])[0]! }
}
