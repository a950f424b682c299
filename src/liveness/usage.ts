import { statfs } from 'node:fs/promises'
import { cpus, freemem, totalmem } from 'node:os'
import type { Logger } from '../support/logger.ts'
import { findNvidiaSmi, type GpuInfo, parseNvidiaSmi, runNvidiaSmi } from './nvidia-smi.ts'

/** Used / total / percent of one resource, as in the node record (`Node.usage`). */
export interface ResourceUsage {
  used: number
  total: number
  /** `used / total × 100`, rounded to 2 decimals (disk: see `ResourceSampler.usage`). */
  percent: number
}

export interface NodeUsage {
  cpu: ResourceUsage
  memory: ResourceUsage
  disk: ResourceUsage
}

/** Where a heartbeat gets the machine's figures from. `ResourceSampler` reads the OS; tests hand in fakes. */
export interface ResourceSource {
  usage(): Promise<NodeUsage>
  gpus(): Promise<GpuInfo[]>
}

export interface ResourceSamplerInit {
  /** Directory whose file system is reported as `disk` (the agent's data dir). @default process.cwd() */
  dataDir?: string
  /**
   * The nvidia-smi binary. @default the first `nvidia-smi` on PATH, looked up once; none → no GPUs
   */
  nvidiaSmiPath?: string
  /** Longest nvidia-smi may run before it is killed and the GPU list is taken as empty, ms. @default 5000 */
  nvidiaSmiTimeoutMs?: number
  /**
   * How long a GPU list is reused before nvidia-smi runs again, ms. nvidia-smi takes tens to hundreds
   * of ms of CPU (driver initialisation), too much for every heartbeat; GPUs rarely come and go.
   * @default 10000
   */
  gpuCacheMs?: number
}

export interface ResourceSamplerComponents {
  log: Logger
}

interface CpuTimes {
  busy: number
  total: number
}

const round2 = (x: number) => Math.round(x * 100) / 100
const percentOf = (used: number, total: number) => (total > 0 ? round2((used / total) * 100) : 0)

function cpuTimes(): CpuTimes {
  let busy = 0
  let total = 0
  for (const { times } of cpus()) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq
    total += all
    busy += all - times.idle
  }
  return { busy, total }
}

/**
 * Reads CPU, memory, disk and GPU figures from the OS. Cheap enough for every heartbeat: the CPU,
 * memory and disk figures are a few syscalls; nvidia-smi runs at most once per `gpuCacheMs`.
 * Never throws: a figure it cannot read is reported as zero (and logged at debug level).
 */
export class ResourceSampler implements ResourceSource {
  readonly #dataDir: string
  readonly #log: Logger
  readonly #timeoutMs: number
  readonly #gpuCacheMs: number
  #nvidiaSmi: Promise<string | undefined> | undefined
  #previousCpu: CpuTimes = cpuTimes()
  #gpus: { at: number; list: Promise<GpuInfo[]> } | undefined

  constructor(init: ResourceSamplerInit, components: ResourceSamplerComponents) {
    this.#dataDir = init.dataDir ?? process.cwd()
    this.#log = components.log
    this.#timeoutMs = init.nvidiaSmiTimeoutMs ?? 5000
    this.#gpuCacheMs = init.gpuCacheMs ?? 10_000
    if (init.nvidiaSmiPath !== undefined) this.#nvidiaSmi = Promise.resolve(init.nvidiaSmiPath)
  }

  /**
   * - `cpu`: `total` = logical cores, `used` = busy cores (`percent` × cores / 100), `percent` = share
   *   of CPU time not idle since the previous call (the first call, and calls within 10 ms of the
   *   previous one: since boot).
   * - `memory`: bytes; `used` = total − available (`os.freemem()`, MemAvailable on Linux).
   * - `disk`: bytes of the file system holding the data dir; `used` = total − free blocks, `percent` =
   *   used / (used + blocks available to unprivileged users), as `df` and gopsutil report it.
   */
  async usage(): Promise<NodeUsage> {
    return { cpu: this.#cpu(), memory: this.#memory(), disk: await this.#disk() }
  }

  /** GPUs from nvidia-smi when it exists, else []. Failures give [] and a debug log line. */
  gpus(): Promise<GpuInfo[]> {
    const now = Date.now()
    if (this.#gpus === undefined || now - this.#gpus.at >= this.#gpuCacheMs) {
      this.#gpus = { at: now, list: this.#readGpus() }
    }
    return this.#gpus.list
  }

  #cpu(): ResourceUsage {
    const cores = cpus().length
    const current = cpuTimes()
    let busy = current.busy - this.#previousCpu.busy
    let total = current.total - this.#previousCpu.total
    if (total < 10 * cores) {
      // Too short a window for the 10 ms tick of the counters: use the average since boot.
      busy = current.busy
      total = current.total
    } else {
      this.#previousCpu = current
    }
    const percent = percentOf(busy, total)
    return { used: round2((percent / 100) * cores), total: cores, percent }
  }

  #memory(): ResourceUsage {
    const total = totalmem()
    const used = total - freemem()
    return { used, total, percent: percentOf(used, total) }
  }

  async #disk(): Promise<ResourceUsage> {
    try {
      const fs = await statfs(this.#dataDir)
      const total = fs.blocks * fs.bsize
      const used = (fs.blocks - fs.bfree) * fs.bsize
      const available = fs.bavail * fs.bsize
      return { used, total, percent: percentOf(used, used + available) }
    } catch (err) {
      this.#log.debug({ err, dataDir: this.#dataDir }, 'cannot read disk usage')
      return { used: 0, total: 0, percent: 0 }
    }
  }

  async #readGpus(): Promise<GpuInfo[]> {
    this.#nvidiaSmi ??= findNvidiaSmi()
    const binary = await this.#nvidiaSmi
    if (binary === undefined) return []
    let output: string
    try {
      output = await runNvidiaSmi(binary, this.#timeoutMs)
    } catch (err) {
      this.#log.debug({ err, binary }, 'nvidia-smi failed; reporting no GPUs')
      return []
    }
    try {
      return parseNvidiaSmi(output)
    } catch (err) {
      this.#log.debug(
        { err, output: output.slice(0, 500) },
        'cannot parse nvidia-smi output; reporting no GPUs',
      )
      return []
    }
  }
}
