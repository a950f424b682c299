import { chmod, readFile, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseNvidiaSmi, ResourceSampler } from '../../src/liveness/index.ts'
import { withTempDir } from '../replica/fixtures.ts'
import { testLogger } from './fixtures.ts'

// Two GPUs as `nvidia-smi --query-gpu=<our columns> --format=csv,noheader,nounits` prints them.
const SMI_OUTPUT = [
  '0, NVIDIA A100-SXM4-40GB, GPU-5b3c, 00000000:07:00.0, 34, 0, 40960, 4, 56.21, 400.00, Default, P0, 550.54.15',
  '1, NVIDIA A100-SXM4-40GB, GPU-9e1f, 00000000:0F:00.0, 31, 87, 40960, 39000, [N/A], [Not Supported], Default, P2, 550.54.15',
  '',
].join('\n')

async function script(dir: string, name: string, body: string): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, `#!/bin/sh\n${body}\n`)
  await chmod(path, 0o755)
  return path
}

describe('parseNvidiaSmi', () => {
  it('reads one GPU a line with 1Backend field names, leaving out unavailable values', () => {
    expect(parseNvidiaSmi(SMI_OUTPUT)).toEqual([
      {
        intraNodeId: 0,
        name: 'NVIDIA A100-SXM4-40GB',
        uuid: 'GPU-5b3c',
        busId: '00000000:07:00.0',
        temperature: 34,
        gpuUtilization: 0,
        memoryTotal: 40960,
        memoryUsage: 4,
        powerUsage: 56.21,
        powerCap: 400,
        computeMode: 'Default',
        performanceState: 'P0',
        driverVersion: '550.54.15',
      },
      {
        intraNodeId: 1,
        name: 'NVIDIA A100-SXM4-40GB',
        uuid: 'GPU-9e1f',
        busId: '00000000:0F:00.0',
        temperature: 31,
        gpuUtilization: 87,
        memoryTotal: 40960,
        memoryUsage: 39000,
        computeMode: 'Default',
        performanceState: 'P2',
        driverVersion: '550.54.15',
      },
    ])
    expect(parseNvidiaSmi('')).toEqual([])
  })

  it('throws on output of another shape', () => {
    expect(() =>
      parseNvidiaSmi('NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'),
    ).toThrow(/columns/)
    expect(() => parseNvidiaSmi(SMI_OUTPUT.replace('0, NVIDIA', 'x, NVIDIA'))).toThrow(/index/)
  })
})

describe('ResourceSampler', () => {
  it('reports CPU in cores, memory and disk in bytes, with percentages', async () => {
    await withTempDir(async (dir) => {
      const sampler = new ResourceSampler({ dataDir: dir }, { log: testLogger() })
      const first = await sampler.usage()
      // Burn some CPU so the second sample has a window to measure.
      const until = Date.now() + 50
      while (Date.now() < until);
      const { cpu, memory, disk } = await sampler.usage()
      for (const u of [first.cpu, cpu, memory, disk]) {
        expect(u.used).toBeGreaterThanOrEqual(0)
        expect(u.used).toBeLessThanOrEqual(u.total)
        expect(u.percent).toBeGreaterThanOrEqual(0)
        expect(u.percent).toBeLessThanOrEqual(100)
      }
      expect(cpu.total).toBe(cpus().length)
      expect(cpu.used).toBeCloseTo((cpu.percent / 100) * cpu.total, 1)
      expect(memory.total).toBe(totalmem())
      expect(disk.total).toBeGreaterThan(0)
    })
  })

  it('reports zero disk for a data dir that does not exist, without throwing', async () => {
    const sampler = new ResourceSampler({ dataDir: '/nonexistent/p2p-registry' }, { log: testLogger() })
    expect((await sampler.usage()).disk).toEqual({ used: 0, total: 0, percent: 0 })
  })

  it('runs nvidia-smi when there is one, caches the list, and gives [] on any failure', async () => {
    await withTempDir(async (dir) => {
      const log = testLogger()
      const good = await script(
        dir,
        'smi-good',
        `echo "$@" >> ${join(dir, 'calls')}\ncat <<'EOF'\n${SMI_OUTPUT}EOF`,
      )
      const sampler = new ResourceSampler({ nvidiaSmiPath: good, gpuCacheMs: 60_000 }, { log })
      expect((await sampler.gpus()).map((g) => g.uuid)).toEqual(['GPU-5b3c', 'GPU-9e1f'])
      await sampler.gpus()
      const calls = (await readFile(join(dir, 'calls'), 'utf8')).trim().split('\n')
      expect(calls).toHaveLength(1)
      expect(calls[0]).toMatch(/^--query-gpu=index,name,uuid,.* --format=csv,noheader,nounits$/)

      const failing = await script(dir, 'smi-fail', 'echo "NVIDIA-SMI has failed"; exit 9')
      const garbage = await script(dir, 'smi-garbage', 'echo "a, b"')
      const slow = await script(dir, 'smi-slow', 'exec sleep 5')
      for (const nvidiaSmiPath of [failing, garbage, slow, join(dir, 'missing')]) {
        const sampler = new ResourceSampler({ nvidiaSmiPath, nvidiaSmiTimeoutMs: 200 }, { log })
        expect(await sampler.gpus()).toEqual([])
      }
    })
  })

  it('gives [] where nvidia-smi is not on PATH', async () => {
    const path = process.env.PATH
    process.env.PATH = '/nonexistent'
    try {
      expect(await new ResourceSampler({}, { log: testLogger() }).gpus()).toEqual([])
    } finally {
      process.env.PATH = path
    }
  })
})
