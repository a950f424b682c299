/**
 * The container tier: the image built from the Dockerfile and docker-compose.cluster.yml run for real,
 * with podman and docker-compose 1.29 through podman's Docker API (scripts/container-cluster). It needs
 * root, podman, docker-compose and a loopback-only network namespace (scripts/isolated, as `.ci/run`
 * runs the suite); without them it skips and says why. `.ci/run` sets P2P_REGISTRY_CONTAINERS=required,
 * so in CI a missing piece fails instead.
 *
 * The root filesystem of the base image comes from `scripts/container-cluster rootfs`, which needs
 * Debian's mirror and so runs before the suite, outside the isolated namespace.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '../support/wait.ts'

const run = promisify(execFile)
const SCRIPT = new URL('../../scripts/container-cluster', import.meta.url).pathname
const PROJECT = 'p2p-registry-ct'
const AGENTS = ['agent-1', 'agent-2', 'agent-3'] as const
const PORT: Record<(typeof AGENTS)[number], number> = { 'agent-1': 11331, 'agent-2': 11332, 'agent-3': 11333 }
/** docker-compose stop's default: past it the engine sends SIGKILL. */
const COMPOSE_STOP_TIMEOUT_MS = 10_000

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => existsSync(`${dir}/${command}`))
}

function whyNot(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root'
  for (const command of ['podman', 'docker-compose', 'curl'])
    if (!onPath(command)) return `no ${command} on PATH (apt-get install ${command})`
  if (!existsSync('/usr/lib/podman/netavark')) return 'no netavark (apt-get install netavark aardvark-dns)'
  if (process.env.P2P_REGISTRY_ISOLATED !== '1')
    return 'not in a loopback-only network namespace: run the suite as `scripts/isolated npm test`'
  return undefined
}

const skip = whyNot()
if (skip && process.env.P2P_REGISTRY_CONTAINERS === 'required')
  throw new Error(`the container tier is required here (P2P_REGISTRY_CONTAINERS) but cannot run: ${skip}`)

async function script(...args: string[]): Promise<string> {
  const { stdout } = await run(SCRIPT, args, { maxBuffer: 64 << 20 })
  return stdout
}
const podman = (...args: string[]) => script('podman', ...args)
const compose = (...args: string[]) => script('compose', ...args)
const container = (agent: string) => `${PROJECT}_${agent}_1`

async function api(agent: (typeof AGENTS)[number], path: string, init?: RequestInit): Promise<Response> {
  return fetch(`http://127.0.0.1:${PORT[agent]}/registry-svc${path}`, {
    ...init,
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(3000),
  })
}

async function json<T>(
  agent: (typeof AGENTS)[number],
  path: string,
  init?: RequestInit,
): Promise<T | undefined> {
  try {
    const res = await api(agent, path, init)
    return res.ok ? ((await res.json()) as T) : undefined
  } catch {
    return undefined // not listening yet, or restarting
  }
}

interface Node {
  id: string
  multiaddrs?: string[]
}
const nodes = (agent: (typeof AGENTS)[number]) =>
  json<{ nodes: Array<Node & { liveness?: string }> }>(agent, '/nodes', { method: 'POST', body: '{}' })
const definitions = (agent: (typeof AGENTS)[number]) =>
  json<{ definitions: Array<{ id: string }> }>(agent, '/definitions')

async function putDefinition(agent: (typeof AGENTS)[number], id: string): Promise<void> {
  const res = await api(agent, '/definition', {
    method: 'PUT',
    body: JSON.stringify({ definition: { id, image: { name: `example/${id}`, port: 8080 } } }),
  })
  expect(res.status, await res.clone().text()).toBe(201)
}

const hasDefinition = async (agent: (typeof AGENTS)[number], id: string) =>
  (await definitions(agent))?.definitions.some((d) => d.id === id) ?? false

async function inspect(format: string, name: string): Promise<string> {
  return (await podman('inspect', '--format', format, name)).trim()
}

describe.skipIf(skip)(
  `the container image and the compose cluster${skip ? ` (skipped: ${skip})` : ''}`,
  () => {
    const figures: Record<string, string> = {}

    beforeAll(async () => {
      await script('down') // whatever an interrupted earlier run left
      await script('base')
      const started = Date.now()
      await script('image')
      figures['image build (offline)'] = `${((Date.now() - started) / 1000).toFixed(1)} s`
    }, 600_000)

    afterAll(async () => {
      await script('down')
      console.info(`container tier figures: ${JSON.stringify(figures)}`)
    }, 120_000)

    it('builds an image with its HEALTHCHECK, the bundle only, no build tools, run as the node user', async () => {
      const config = JSON.parse(await inspect('{{json .Config}}', 'p2p-registry:latest')) as {
        User: string
        Entrypoint: string[]
        Env: string[]
      }
      expect(config.User).toBe('node')
      // Kept because the image is in Docker's format: OCI's has no field for it.
      expect(await inspect('{{.ManifestType}}', 'p2p-registry:latest')).toContain('docker')
      const healthcheck = JSON.parse(await inspect('{{json .HealthCheck}}', 'p2p-registry:latest')) as {
        Test: string[]
      }
      expect(healthcheck.Test.join(' ')).toContain('/healthz')
      expect(config.Entrypoint.slice(0, 1)).toEqual(['node'])
      // Configuration is through OB_* variables only: no config file is copied in or named.
      expect(config.Env.filter((e) => e.startsWith('OB_')).map((e) => e.split('=')[0])).toEqual(
        expect.arrayContaining(['OB_DATA_DIR', 'OB_HTTP_ADDR', 'OB_P2P_LISTEN']),
      )
      const size = Number(await inspect('{{.Size}}', 'p2p-registry:latest'))
      figures['image size'] = `${(size / 1e6).toFixed(0)} MB`

      const probe = await podman(
        'run',
        '--rm',
        '--network=none',
        '--entrypoint',
        'sh',
        'p2p-registry:latest',
        '-c',
        'id -un; ls /app; ls /app/dist; for t in npm npx yarn corepack gcc cc make g++ python3 git; do command -v $t; done; true',
      )
      const [user, app, ...rest] = probe.trim().split('\n')
      expect(user).toBe('node')
      expect(app).toBe('dist') // no node_modules, no sources: the bundle is the whole program
      expect(rest).toContain('p2p-registry.mjs')
      expect(rest).not.toContain('cluster-child.mjs')
      expect(rest.filter((line) => line.startsWith('/'))).toEqual([]) // no build tool on PATH
    })

    it('brings the three agents up; every node sees every node; a write through one port is read through the others', async () => {
      const started = Date.now()
      await script('up')
      for (const agent of AGENTS)
        await waitFor(
          `${agent} to see the three agents alive (SWIM datagrams cross the compose network)`,
          async () =>
            (await nodes(agent))?.nodes.filter(
              (n) => AGENTS.includes(n.id as never) && n.liveness === 'alive',
            ).length === 3,
          { timeoutMs: 90_000, everyMs: 250 },
        )
      figures['compose up to every node seeing every node'] =
        `${((Date.now() - started) / 1000).toFixed(1)} s`

      const written = Date.now()
      await putDefinition('agent-1', 'through-agent-1')
      for (const agent of ['agent-2', 'agent-3'] as const)
        await waitFor(
          `${agent} to read the write made through agent-1`,
          () => hasDefinition(agent, 'through-agent-1'),
          {
            timeoutMs: 30_000,
            everyMs: 50,
          },
        )
      figures['write through agent-1 read on agents 2 and 3'] = `${Date.now() - written} ms`
      // Liveness crossed the compose network as SWIM datagrams (UDP on the libp2p port number).
      // (A node is alive from its fresh record before any probe: wait for the first datagrams.)
      await waitFor(
        'SWIM datagrams accepted by agent-1',
        async () => {
          const metrics = await (await fetch(`http://127.0.0.1:${PORT['agent-1']}/metrics`)).text()
          const accepted = /p2p_registry_swim_datagrams_total\{outcome="accepted"\} (\d+)/.exec(metrics)
          return Number(accepted?.[1] ?? 0) > 0
        },
        { timeoutMs: 10_000, everyMs: 200 },
      )
    })

    it('runs each agent as PID 1 and non-root, with its data in its named volume', async () => {
      const out = await podman(
        'exec',
        container('agent-1'),
        'sh',
        '-c',
        'id -u; tr "\\0" " " </proc/1/cmdline; echo; ls -n /data',
      )
      const [uid, cmdline, ...listing] = out.trim().split('\n')
      expect(uid).toBe('1000')
      expect(cmdline).toMatch(/^node .*dist\/p2p-registry\.mjs agent/)
      expect(listing.join('\n')).toMatch(/ 1000 +1000 .* (db|CURRENT|peer)/)
      const mounts = JSON.parse(await inspect('{{json .Mounts}}', container('agent-1'))) as Array<{
        Name?: string
        Destination: string
        Type: string
      }>
      expect(mounts).toContainEqual(
        expect.objectContaining({ Type: 'volume', Name: `${PROJECT}_agent-1-data`, Destination: '/data' }),
      )
    })

    it("turns healthy by the image's own HEALTHCHECK", async () => {
      // podman schedules health checks with systemd timers; with no systemd here, the test runs the check
      // as the timer would, which records its result in the container's state.
      for (const agent of AGENTS) {
        await podman('healthcheck', 'run', container(agent))
        expect(await inspect('{{.State.Health.Status}}', container(agent))).toBe('healthy')
      }
    })

    it('stops agent-2 gracefully on SIGTERM within the stop timeout; restarted, it keeps its data and catches up', async () => {
      const before = await json<{ node: Node }>('agent-2', '/node/self')
      expect(before?.node.id).toBe('agent-2')

      const stopping = Date.now()
      await compose('stop', 'agent-2')
      const stopMs = Date.now() - stopping
      expect(stopMs).toBeLessThan(COMPOSE_STOP_TIMEOUT_MS)
      expect(await inspect('{{.State.ExitCode}}', container('agent-2'))).toBe('0') // not 137: no SIGKILL
      figures['compose stop agent-2'] = `${(stopMs / 1000).toFixed(1)} s`

      await putDefinition('agent-1', 'while-agent-2-stopped')
      const restarting = Date.now()
      await compose('start', 'agent-2')
      const after = await waitFor(
        'agent-2 to answer again',
        () => json<{ node: Node }>('agent-2', '/node/self'),
        {
          timeoutMs: 60_000,
          everyMs: 100,
        },
      )
      // The same libp2p identity: it lives in the data directory, so the volume was kept.
      const peerId = (node: Node) => node.multiaddrs?.[0]?.split('/p2p/')[1]
      expect(peerId(after.node)).toBe(peerId(before!.node))
      expect(await hasDefinition('agent-2', 'through-agent-1')).toBe(true)
      await waitFor('agent-2 to catch up on the write made while it was stopped', () =>
        hasDefinition('agent-2', 'while-agent-2-stopped'),
      )
      figures['compose start agent-2 to caught up'] = `${((Date.now() - restarting) / 1000).toFixed(1)} s`
    })

    it('logs JSON lines on stdout', async () => {
      const { stdout, stderr } = await run(SCRIPT, ['podman', 'logs', container('agent-2')], {
        maxBuffer: 64 << 20,
      })
      const lines = stdout.trim().split('\n')
      expect(lines.length).toBeGreaterThan(3)
      for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow()
      expect(lines.map((line) => JSON.parse(line).msg)).toContain('shutting down')
      expect(stderr.trim()).toBe('')
    })

    it('docker-compose down -v removes the containers, the network and the volumes', async () => {
      await compose('down', '-v')
      expect((await podman('ps', '--all', '--format', '{{.Names}}')).trim()).toBe('')
      expect((await podman('volume', 'ls', '--format', '{{.Name}}')).trim()).toBe('')
      expect(await podman('network', 'ls', '--format', '{{.Name}}')).not.toContain(PROJECT)
    })
  },
)
