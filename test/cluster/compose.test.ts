import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { loadConfig } from '../../src/agent/config.ts'
import { checkSeed } from '../../src/p2p/seeds.ts'

const FILE = new URL('../../docker-compose.cluster.yml', import.meta.url).pathname

interface Service {
  environment: Record<string, string>
  ports?: string[]
  volumes?: string[]
  build?: unknown
  image?: string
}

async function services(): Promise<Record<string, Service>> {
  const doc = parse(await readFile(FILE, 'utf8'), { merge: true }) as { services: Record<string, Service> }
  return doc.services
}

const hasDockerCompose = await promisify(execFile)('docker-compose', ['--version']).then(
  () => true,
  () => false,
)

describe('docker-compose.cluster.yml', () => {
  it('runs at least 3 agents, each with a valid agent configuration', async () => {
    const all = await services()
    expect(Object.keys(all).length).toBeGreaterThanOrEqual(3)
    for (const [name, service] of Object.entries(all)) {
      // The environment must be one the agent accepts (throws ConfigError naming the variable if not).
      const config = loadConfig({}, service.environment)
      expect(config.httpAddr.host, `${name} listens on all interfaces inside its container`).toBe('0.0.0.0')
      expect(service.build ?? service.image, `${name} builds or names the image`).toBeTruthy()
    }
  })

  it('gives every agent a unique id, a unique URL naming a service of the file, and the same cluster key', async () => {
    const all = await services()
    const ids = Object.values(all).map((s) => s.environment.OB_NODE_ID)
    const urls = Object.values(all).map((s) => s.environment.OB_SELF_URL!)
    expect(ids.every(Boolean)).toBe(true)
    expect(new Set(ids).size).toBe(ids.length)
    expect(new Set(urls).size).toBe(urls.length)
    for (const [name, service] of Object.entries(all)) {
      const url = new URL(service.environment.OB_SELF_URL!)
      expect(url.hostname, `${name}'s URL is reachable by service name`).toBe(name)
      expect(url.port).toBe(service.environment.OB_HTTP_ADDR!.split(':')[1])
    }
    const keys = new Set(Object.values(all).map((s) => s.environment.OB_CLUSTER_KEY))
    expect(keys.size).toBe(1)
    expect([...keys][0]).toBeTruthy()
  })

  it('seeds every agent with peers that are services of the file, and publishes distinct host ports and volumes', async () => {
    const all = await services()
    const names = new Set(Object.keys(all))
    const hostPorts = new Set<string>()
    const volumes = new Set<string>()
    for (const [name, service] of Object.entries(all)) {
      const seeds = service.environment.OB_PEERS!.split(',')
      expect(seeds.length, `${name} has seeds`).toBeGreaterThan(0)
      for (const seed of seeds) {
        checkSeed(seed)
        expect(names.has(seed.split(':')[0]!), `seed ${seed} of ${name} is a service`).toBe(true)
      }
      for (const port of service.ports ?? []) {
        const published = port.split(':')[0]!
        expect(hostPorts.has(published), `host port ${published} used once`).toBe(false)
        hostPorts.add(published)
      }
      expect(service.ports?.length, `${name} publishes its HTTP port`).toBeGreaterThan(0)
      const volume = service.volumes?.[0]?.split(':')[0]
      expect(volume, `${name} has a named volume`).toBeTruthy()
      expect(volumes.has(volume!)).toBe(false)
      volumes.add(volume!)
    }
  })

  it.skipIf(!hasDockerCompose)('is accepted by `docker-compose config`', async () => {
    const { stdout } = await promisify(execFile)('docker-compose', ['-f', FILE, 'config', '--quiet'])
    expect(stdout).toBe('')
  })
  if (!hasDockerCompose)
    console.warn('docker-compose is not installed: skipping `docker-compose config` (.ci/run installs it)')
})
