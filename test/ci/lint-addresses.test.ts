import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const SCRIPT = join(import.meta.dirname, '../../scripts/lint-addresses.ts')
const dir = await mkdtemp(join(tmpdir(), 'p2p-registry-lint-'))
afterAll(() => rm(dir, { recursive: true, force: true }))

async function lint(source: string): Promise<{ code: number; stderr: string }> {
  const file = join(dir, 'planted.test.ts')
  await writeFile(file, source)
  try {
    await run(process.execPath, [SCRIPT, file])
    return { code: 0, stderr: '' }
  } catch (err) {
    const { code, stderr } = err as { code: number; stderr: string }
    return { code, stderr }
  }
}

// Built from parts so that this file itself passes the check it tests.
const private10 = ['10', '1', '2', '3'].join('.')

describe('scripts/lint-addresses.ts', () => {
  it.each([
    [`register({ url: 'http://${private10}:80', slug: 's' })`],
    [`const url = \`tcp://${'10'}.\${n}.0.1:5432\``],
    [`{ ip: '${['192', '168', '0', '1'].join('.')}', port: 80 }`],
    [`peers: ['/ip4/${private10}/tcp/11338']`],
  ])('fails on %s, naming the line and why', async (line) => {
    const { code, stderr } = await lint(`const x = 1\n${line}\n`)
    expect(code).toBe(1)
    expect(stderr).toContain('planted.test.ts:2: names an address off this machine')
    expect(stderr).toContain('may only name loopback')
  })

  it.each([
    [`register({ url: 'http://127.0.0.1:8080', slug: 's' })`],
    [`const url = \`http://127.\${n}.0.1:8080\``],
    [`const host = 'http://198.18.0.3:11337'`],
    [`listen: ['/ip4/0.0.0.0/tcp/11338']`],
    [`const version = '1.2.3'`],
  ])('passes %s', async (line) => {
    expect(await lint(`${line}\n`)).toEqual({ code: 0, stderr: '' })
  })
})
