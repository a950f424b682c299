/**
 * deploy/: the systemd unit and its environment file, for running one agent per VM without containers.
 * `systemd-analyze verify` checks the unit as shipped, except for the path of the agent, which points at
 * this checkout's build (verify insists that ExecStart's program exists).
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/agent/config.ts'
import { BIN } from '../support/process-agent.ts'

const run = promisify(execFile)
const UNIT = new URL('../../deploy/p2p-registry.service', import.meta.url).pathname
const ENV_FILE = new URL('../../deploy/agent.env', import.meta.url).pathname
const INSTALLED_AT = '/usr/local/bin/p2p-registry'

const verifier = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((path) => existsSync(path))
const dir = await mkdtemp(join(tmpdir(), 'p2p-registry-unit-'))
afterAll(() => rm(dir, { recursive: true, force: true }))

/** `systemd-analyze verify` on the unit text; what it prints is what it found wrong. */
async function verify(name: string, text: string): Promise<{ code: number; output: string }> {
  const file = join(dir, name)
  await writeFile(file, text.replace(`ExecStart=${INSTALLED_AT} `, `ExecStart=${BIN} `))
  try {
    const { stdout, stderr } = await run(verifier!, ['verify', file])
    return { code: 0, output: (stdout + stderr).trim() }
  } catch (err) {
    const { code, stdout, stderr } = err as { code: number; stdout: string; stderr: string }
    return { code, output: (stdout + stderr).trim() }
  }
}

describe.skipIf(!verifier)(
  `deploy/p2p-registry.service${verifier ? '' : ' (skipped: no systemd-analyze; apt-get install systemd)'}`,
  () => {
    it('passes systemd-analyze verify with nothing to say', async () => {
      const unit = await readFile(UNIT, 'utf8')
      expect(unit).toContain(`ExecStart=${INSTALLED_AT} agent`)
      expect(await verify('p2p-registry.service', unit)).toEqual({ code: 0, output: '' })
    })

    it('would be caught: a misspelled key and a bad value are named', async () => {
      const unit = (await readFile(UNIT, 'utf8'))
        .replace('Restart=on-failure', 'Restart=sometimes')
        .replace('PrivateTmp=yes', 'PrivateTemp=yes')
      const { output } = await verify('broken.service', unit)
      expect(output).toContain('sometimes')
      expect(output).toContain("Unknown key 'PrivateTemp'")
    })
  },
)

describe('deploy/agent.env', () => {
  it('holds only OB_* variables, which the agent accepts together with the unit’s own', async () => {
    // systemd's EnvironmentFile: NAME=value lines; # starts a comment line.
    const fromFile = Object.fromEntries(
      [...(await readFile(ENV_FILE, 'utf8')).matchAll(/^([A-Za-z_]\w*)=(.*)$/gm)].map(([, name, value]) => [
        name!,
        value!,
      ]),
    )
    expect(Object.keys(fromFile).length).toBeGreaterThan(3)
    expect(Object.keys(fromFile).filter((name) => !name.startsWith('OB_'))).toEqual([])
    const fromUnit = Object.fromEntries(
      [...(await readFile(UNIT, 'utf8')).matchAll(/^Environment=(OB_\w+)=(.*)$/gm)].map(([, name, value]) => [
        name!,
        value!.replace('%S', '/var/lib'),
      ]),
    )
    expect(fromUnit.OB_DATA_DIR).toBe('/var/lib/p2p-registry')
    const config = loadConfig({}, { ...fromFile, ...fromUnit })
    expect(config.nodeId).toBe('node-a')
    expect(config.dataDir).toBe('/var/lib/p2p-registry')
    expect(config.mdns).toBe(false)
  })
})
