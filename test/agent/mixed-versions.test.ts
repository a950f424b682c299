/**
 * A rolling upgrade: agents of the last release and of this build run side by side (docs/replication.md,
 * Mixed versions). Two agents of each, one cluster; writes, status writes and deletes made through
 * either kind reach all four, and their replicas end byte-identical (equal digests).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AgentProcess, BIN, startAgentUp } from '../support/process-agent.ts'
import { buildRelease, LAST_RELEASE, ReleaseUnavailableError } from '../support/release.ts'
import { waitFor } from '../support/wait.ts'

type Up = AgentProcess & { url: string; multiaddr: string }

// Built before the tests are collected: a clone without the release in its history (and no origin to
// fetch it from) cannot run this test, and says so rather than fail for a reason of the checkout.
const lastBin = await buildRelease(LAST_RELEASE).catch((err: unknown) => {
  if (!(err instanceof ReleaseUnavailableError)) throw err
  console.warn(`[mixed-versions] skipped: ${err.message}`)
  return undefined
})

describe.runIf(lastBin !== undefined)(
  `agents of the last release (${LAST_RELEASE.slice(0, 7)}) and of this build in one cluster`,
  () => {
    const agents: Array<Up & { release: 'last' | 'this' }> = []
    let dir: string
    let server: Server

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'p2p-registry-mixed-'))
      const releases = ['last', 'this', 'last', 'this'] as const
      for (const [i, release] of releases.entries()) {
        const env = {
          OB_NODE_ID: `${release}-${i}`,
          OB_SELF_URL: `http://127.0.0.1:${21000 + i}`,
          OB_DATA_DIR: join(dir, `agent-${i}`),
          OB_HEARTBEAT_MS: '500',
          OB_PROBE_INTERVAL_MS: '200',
          ...(agents[0] ? { OB_PEERS: agents[0].multiaddr } : {}),
        }
        agents.push({ ...(await startAgentUp(env, release === 'last' ? lastBin! : BIN)), release })
      }
      server = createServer((socket) => socket.end())
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    }, 180_000)

    afterAll(async () => {
      for (const agent of agents) agent.child.kill('SIGKILL')
      await Promise.all(agents.map((agent) => agent.exited()))
      await new Promise((resolve) => server?.close(resolve))
      if (dir) await rm(dir, { recursive: true, force: true })
    })

    const call = async (agent: Up, method: string, path: string, body?: unknown) => {
      const response = await fetch(`${agent.url}${path}`, {
        method,
        ...(body === undefined
          ? {}
          : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      })
      expect(response.status, `${method} ${path} on ${agent.url}`).toBeLessThan(300)
      return response.status === 204 ? undefined : response.json()
    }

    it('converges on writes, status writes and deletes made through either release', async () => {
      const { port } = server.address() as { port: number }
      for (const [i, agent] of agents.entries()) {
        await call(agent, 'PUT', '/registry-svc/instance', {
          id: `via-${i}`,
          url: `http://127.0.4.${i + 1}:9`,
          slug: 'mixed',
          // This build's instances carry their check; the last release keeps it as an unknown field.
          ...(agent.release === 'this' ? { check: { type: 'tcp', intervalMs: 200 } } : {}),
        })
        await call(agent, 'PUT', '/registry-svc/definition', {
          definition: { id: `def-${i}`, image: { name: 'nginx', port: 80 } },
        })
      }
      // Owned by an agent of the last release, which probes it and writes Healthy as a status write
      // (unsigned: believed from an owner whose record does not say it signs them), and one owned by
      // an agent of this build (signed; the last release keeps the signature as an unknown field).
      await call(agents[0]!, 'PUT', '/registry-svc/instance', {
        id: 'probed',
        url: `http://127.0.0.1:${port}`,
        slug: 'mixed',
      })
      await call(agents[1]!, 'PUT', '/registry-svc/instance', {
        id: 'probed-new',
        url: `http://127.0.0.1:${port}/new`,
        slug: 'mixed',
      })
      // Deletes crossing releases: registered through one, deleted through the other once it got there.
      await waitFor('the writes to cross releases', async () => {
        const seen = (await (await fetch(`${agents[1]!.url}/registry-svc/instances?id=via-0`)).json()) as {
          instances: unknown[]
        }
        const defs = (await (await fetch(`${agents[2]!.url}/registry-svc/definitions`)).json()) as {
          definitions: Array<{ id: string }>
        }
        return seen.instances.length === 1 && defs.definitions.some((d) => d.id === 'def-3')
      })
      await call(agents[1]!, 'DELETE', '/registry-svc/instance/via-0')
      await call(agents[2]!, 'DELETE', '/registry-svc/definition/def-3')

      const state = async (agent: Up) => {
        const health = (await call(agent, 'GET', '/healthz')) as { digest: string }
        const { instances } = (await call(agent, 'GET', '/registry-svc/instances?slug=mixed')) as {
          instances: Array<{ id: string; status: string }>
        }
        const { definitions } = (await call(agent, 'GET', '/registry-svc/definitions')) as {
          definitions: Array<{ id: string }>
        }
        return { digest: health.digest, instances, definitions: definitions.map((d) => d.id) }
      }
      let states: Array<Awaited<ReturnType<typeof state>>> = []
      await waitFor(
        'every agent, of either release, to hold the same replica with the probe result in it',
        async () => {
          states = await Promise.all(agents.map(state))
          return (
            states.every((s) => s.digest === states[0]!.digest) &&
            states.every((s) =>
              ['probed', 'probed-new'].every(
                (id) => s.instances.find((i) => i.id === id)?.status === 'Healthy',
              ),
            )
          )
        },
        { timeoutMs: 30_000, everyMs: 200 },
      )
      for (const s of states) {
        expect(s.instances.map((i) => i.id)).toEqual(['probed', 'probed-new', 'via-1', 'via-2', 'via-3'])
        expect(s.definitions).toEqual(['def-0', 'def-1', 'def-2'])
      }
    })
  },
)
