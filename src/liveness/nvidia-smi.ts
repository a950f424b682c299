import { execFile } from 'node:child_process'
import { access, constants } from 'node:fs/promises'
import { delimiter, join } from 'node:path'

/**
 * One GPU as `nvidia-smi` reports it, with 1Backend's field names (its `registry_svc.GPU`, minus `id`,
 * which the node record adds as `<node url>:<intraNodeId>`). Memory in MiB, power in W, temperature
 * in °C, utilisation in %. A value the driver reports as `[N/A]` or `[Not Supported]` is left out.
 */
export interface GpuInfo {
  intraNodeId: number
  name: string
  uuid?: string
  busId?: string
  temperature?: number
  gpuUtilization?: number
  memoryTotal?: number
  memoryUsage?: number
  powerUsage?: number
  powerCap?: number
  computeMode?: string
  performanceState?: string
  driverVersion?: string
}

/**
 * Columns asked of `nvidia-smi --query-gpu`, in order, and the `GpuInfo` field each fills.
 * `number` columns are parsed as numbers; `string` ones are kept as text.
 */
const COLUMNS = [
  ['index', 'intraNodeId', 'number'],
  ['name', 'name', 'string'],
  ['uuid', 'uuid', 'string'],
  ['pci.bus_id', 'busId', 'string'],
  ['temperature.gpu', 'temperature', 'number'],
  ['utilization.gpu', 'gpuUtilization', 'number'],
  ['memory.total', 'memoryTotal', 'number'],
  ['memory.used', 'memoryUsage', 'number'],
  ['power.draw', 'powerUsage', 'number'],
  ['power.limit', 'powerCap', 'number'],
  ['compute_mode', 'computeMode', 'string'],
  ['pstate', 'performanceState', 'string'],
  ['driver_version', 'driverVersion', 'string'],
] as const

export const NVIDIA_SMI_ARGS = [
  `--query-gpu=${COLUMNS.map(([query]) => query).join(',')}`,
  '--format=csv,noheader,nounits',
]

/** Values nvidia-smi prints for a field the GPU or driver does not provide. */
const UNAVAILABLE = /^\[.*\]$|^N\/A$/i

/**
 * Parses the CSV of `nvidia-smi --query-gpu=<COLUMNS> --format=csv,noheader,nounits`: one line per GPU.
 * Throws (with a message saying which line) on a line with the wrong number of columns or a
 * non-numeric index; other unreadable values are left out of that GPU.
 */
export function parseNvidiaSmi(csv: string): GpuInfo[] {
  const gpus: GpuInfo[] = []
  const lines = csv.split(/\r?\n/).filter((line) => line.trim() !== '')
  for (const [i, line] of lines.entries()) {
    const cells = line.split(',').map((cell) => cell.trim())
    if (cells.length !== COLUMNS.length) {
      throw new Error(`nvidia-smi line ${i + 1} has ${cells.length} columns, expected ${COLUMNS.length}`)
    }
    const gpu: Record<string, string | number> = {}
    for (const [c, [, field, type]] of COLUMNS.entries()) {
      const cell = cells[c]!
      if (cell === '' || UNAVAILABLE.test(cell)) continue
      if (type === 'string') gpu[field] = cell
      else if (Number.isFinite(Number(cell))) gpu[field] = Number(cell)
    }
    if (!Number.isInteger(gpu.intraNodeId) || typeof gpu.name !== 'string') {
      throw new Error(`nvidia-smi line ${i + 1} has no GPU index or name`)
    }
    gpus.push(gpu as unknown as GpuInfo)
  }
  return gpus
}

/** The first executable `nvidia-smi` on PATH, or undefined. */
export async function findNvidiaSmi(path = process.env.PATH ?? ''): Promise<string | undefined> {
  const name = process.platform === 'win32' ? 'nvidia-smi.exe' : 'nvidia-smi'
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue
    const candidate = join(dir, name)
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  return undefined
}

/** Runs nvidia-smi and returns its stdout; rejects on a non-zero exit, a timeout or a spawn error. */
export function runNvidiaSmi(binary: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      binary,
      NVIDIA_SMI_ARGS,
      { timeout: timeoutMs, maxBuffer: 1024 * 1024, windowsHide: true, encoding: 'utf8' },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    )
  })
}
