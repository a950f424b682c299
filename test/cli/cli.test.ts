import { execFile, spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { type AddressInfo, createServer } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SEED_YAML } from '../model/fixtures.ts'
import { withTempDir } from '../replica/fixtures.ts'
import { BIN, startAgentUp } from '../support/process-agent.ts'
import { waitFor } from '../support/wait.ts'

interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Runs the real `p2p-registry` binary, with `stdin` as its standard input (empty by default). */
function cli(args: string[], env: Record<string, string> = {}, stdin = ''): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
      },
    )
    child.stdin!.end(stdin)
  })
}

/** A port nothing listens on: bound once by us, then released. */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

describe('p2p-registry CLI against a running agent', () => {
  let agent: Awaited<ReturnType<typeof startAgentUp>>
  let dir: string
  let release: () => void
  let done: Promise<void>
  const run = (...args: string[]) => cli(['--url', agent.url, ...args])

  beforeAll(async () => {
    const ready = Promise.withResolvers<void>()
    const finished = Promise.withResolvers<void>()
    release = finished.resolve
    done = withTempDir(async (tmp) => {
      dir = tmp
      agent = await startAgentUp({
        OB_DATA_DIR: join(tmp, 'data'),
        OB_NODE_ID: 'cli-node',
        OB_SELF_URL: 'http://cli-node:11337',
      })
      ready.resolve()
      await finished.promise
      agent.child.kill('SIGTERM')
      await agent.exited()
    })
    await ready.promise
  })

  afterAll(async () => {
    release()
    await done
  })

  it('lists nodes as an aligned table with a relative heartbeat, and as JSON', async () => {
    const table = await run('nodes', 'list')
    expect(table.code).toBe(0)
    const [header, row] = table.stdout.split('\n')
    expect(header).toMatch(/^NODE ID {3,}URL {3,}LAST HEARTBEAT {3}LIVENESS$/)
    expect(row).toMatch(/^cli-node {3,}http:\/\/cli-node:11337 {3,}\d+s ago {3,}\S+/)
    // Columns line up: URL starts at the same offset in header and row.
    expect(row!.indexOf('http://')).toBe(header!.indexOf('URL'))
    const json = await run('nodes', 'list', '--json')
    expect(JSON.parse(json.stdout)[0]).toMatchObject({ id: 'cli-node', url: 'http://cli-node:11337' })
  })

  it('registers, lists with filters, and removes instances', async () => {
    expect((await run('instances', 'register', 'http://127.0.0.1:8080', '--slug', 'user-svc')).code).toBe(0)
    const parts = await run(
      'instances',
      'register',
      '--slug',
      'user-svc',
      '--scheme',
      'http',
      '--ip',
      '127.0.0.2',
      '--port',
      '8080',
      '--tag',
      'blue',
      '--tag',
      'canary',
    )
    expect(parts).toMatchObject({ code: 0 })
    expect(parts.stdout).toMatch(/^registered instance inst_[0-9a-f]{16} of user-svc\n$/)
    await run('instances', 'register', 'http://127.0.0.3:25', '--slug', 'mail-svc')

    const table = await run('instances', 'list', '--slug', 'user-svc')
    expect(table.stdout.split('\n')[0]).toMatch(/^ID {3,}SLUG {3,}URL {3,}STATUS {3,}LAST HEARTBEAT$/)
    expect(table.stdout).toContain('http://127.0.0.1:8080')
    expect(table.stdout).toContain('http://127.0.0.2:8080')
    expect(table.stdout).not.toContain('mail-svc')

    const tagged = JSON.parse((await run('instances', 'list', '--tag', 'canary', '--json')).stdout) as Array<{
      id: string
      url: string
    }>
    expect(tagged.map((i) => i.url)).toEqual(['http://127.0.0.2:8080'])

    expect(await run('instances', 'remove', tagged[0]!.id)).toMatchObject({ code: 0 })
    const after = JSON.parse(
      (await run('instances', 'list', '--slug', 'user-svc', '--json')).stdout,
    ) as unknown[]
    expect(after).toHaveLength(1)
  })

  it('registers with a check and renews a ttl instance with heartbeats', async () => {
    const http = await run(
      'instances',
      'register',
      'http://127.0.0.4:8080',
      '--check',
      'http',
      '--check-path',
      '/health',
      '--check-interval',
      '5s',
      '--check-timeout',
      '1500',
      '--deregister-after',
      '5m',
    )
    expect(http).toMatchObject({ code: 0 })
    expect(http.stdout).toMatch(/^registered instance inst_[0-9a-f]{16}\n$/)
    const ttl = await run('instances', 'register', 'tcp://127.0.0.4:7', '--slug', 'worker', '--ttl', '10s')
    const id = /registered instance (\S+) of worker/.exec(ttl.stdout)![1]!
    const listed = JSON.parse(
      (await run('instances', 'list', '--ip', '127.0.0.4', '--json')).stdout,
    ) as Array<{
      id: string
      check: unknown
      slug?: string
    }>
    expect(listed.map((i) => [i.slug, i.check])).toEqual(
      expect.arrayContaining([
        [
          undefined,
          { type: 'http', path: '/health', intervalMs: 5000, timeoutMs: 1500, deregisterAfterMs: 300000 },
        ],
        ['worker', { type: 'ttl', ttlMs: 10000 }],
      ]),
    )
    expect(
      await run('instances', 'heartbeat', id, '--status', 'Degraded', '--details', 'warming up'),
    ).toMatchObject({
      code: 0,
      stdout: `renewed instance ${id}\n`,
    })
    const bad = await run('instances', 'register', 'tcp://127.0.0.4:8', '--check-interval', 'soon')
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toContain("option '--check-interval <duration>' argument 'soon' is invalid")
    const orphan = await run('instances', 'register', 'tcp://127.0.0.4:9', '--check-interval', '5s')
    expect(orphan).toMatchObject({ code: 1 })
    expect(orphan.stderr).toMatch(/need --check <type>/)
  })

  it('watches instances: the list now, again on every change, until Ctrl-C', async () => {
    const child = spawn(process.execPath, [
      BIN,
      '--url',
      agent.url,
      'instances',
      'watch',
      '--slug',
      'watched',
      '--json',
    ])
    const lines: string[] = []
    createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    try {
      await waitFor('the first list', () => lines.length === 1)
      expect(JSON.parse(lines[0]!)).toEqual([])
      await run('instances', 'register', 'tcp://127.0.0.5:7', '--slug', 'other')
      await run('instances', 'register', 'tcp://127.0.0.5:8', '--slug', 'watched')
      // Then the owner's check result changes it again (a line each): the second line is the write.
      await waitFor('the list after the change', () => lines.length >= 2)
      expect(JSON.parse(lines[1]!).map((i: { url: string }) => i.url)).toEqual(['tcp://127.0.0.5:8'])
    } finally {
      child.kill('SIGINT')
    }
    expect(await exited).toBe(0)
  })

  it('saves definitions from the YAML and JSON seed examples, lists and deletes them', async () => {
    const yamlFile = join(dir, 'defs.yaml')
    await writeFile(yamlFile, SEED_YAML)
    expect(await run('definitions', 'save', yamlFile)).toMatchObject({
      code: 0,
      stdout: 'saved definition test-a\nsaved definition test-b\n',
    })
    const jsonFile = join(dir, 'def.json')
    await writeFile(
      jsonFile,
      JSON.stringify({ id: 'test-c', image: { name: 'nginx:latest', port: 80 }, hostPort: 8080 }),
    )
    expect((await run('definitions', 'save', jsonFile)).code).toBe(0)
    const list = await run('definitions', 'list')
    expect(list.stdout).toMatch(/^ID {3,}SOURCE {3,}PORTS$/m)
    expect(list.stdout).toMatch(/^test-a {3,}hashicorp\/http-echo {3,}8887:8080$/m)
    expect(list.stdout).toMatch(/^test-c {3,}nginx:latest {3,}8080:80$/m)
    expect(await run('definitions', 'delete', 'test-c')).toMatchObject({
      code: 0,
      stdout: 'deleted definition test-c\n',
    })
    expect(
      JSON.parse((await run('definitions', 'list', '--json')).stdout).map((d: { id: string }) => d.id),
    ).toEqual(['test-a', 'test-b'])
  })

  it('saves definitions from standard input (-), YAML or JSON', async () => {
    const save = (text: string) => cli(['--url', agent.url, 'definitions', 'save', '-'], {}, text)
    expect(await save('id: from-stdin\nimage:\n  name: nginx\n  port: 80\n')).toMatchObject({
      code: 0,
      stdout: 'saved definition from-stdin\n',
    })
    expect(
      await save(JSON.stringify({ id: 'json-stdin', image: { name: 'nginx', port: 81 } })),
    ).toMatchObject({
      code: 0,
      stdout: 'saved definition json-stdin\n',
    })
    const bad = await save('id: broken\nimage:\n  port: 80\n')
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toMatch(/^p2p-registry: standard input: definition\.image/)
    for (const id of ['from-stdin', 'json-stdin']) await run('definitions', 'delete', id)
  })

  it('prints one clear line and exits non-zero on errors, saving nothing', async () => {
    const badFile = join(dir, 'bad.yaml')
    await writeFile(badFile, 'id: broken\nimage:\n  port: 80\n')
    const bad = await run('definitions', 'save', badFile)
    expect(bad).toMatchObject({ code: 1, stdout: '' })
    expect(bad.stderr).toBe(`p2p-registry: ${badFile}: definition.image.name is required\n`)
    expect(
      JSON.parse((await run('definitions', 'list', '--json')).stdout).some(
        (d: { id: string }) => d.id === 'broken',
      ),
    ).toBe(false)

    expect(await run('definitions', 'save', join(dir, 'missing.yaml'))).toMatchObject({
      code: 1,
      stderr: `p2p-registry: cannot read ${join(dir, 'missing.yaml')}: ENOENT\n`,
    })
    const notFound = await run('instances', 'remove', 'nope')
    expect(notFound.code).toBe(1)
    expect(notFound.stderr).toMatch(/^p2p-registry: instance "nope" not found \(HTTP 404\)\n$/)
    const closed = await freePort()
    const unreachable = await cli(['--url', `http://127.0.0.1:${closed}`, 'nodes', 'list'])
    expect(unreachable).toMatchObject({
      code: 1,
      stderr: `p2p-registry: cannot reach the agent at http://127.0.0.1:${closed}: ECONNREFUSED\n`,
    })
    const badPort = await run('instances', 'register', '--slug', 's', '--port', '70000')
    expect(badPort.code).not.toBe(0)
    expect(badPort.stderr).toContain("option '--port <port>' argument '70000' is invalid")
  })

  it('reads the agent URL from OB_URL and has --help on every command', async () => {
    const viaEnv = await cli(['nodes', 'list', '--json'], { OB_URL: agent.url })
    expect(viaEnv.code).toBe(0)
    for (const command of [
      [],
      ['agent'],
      ['nodes', 'list'],
      ['instances', 'register'],
      ['definitions', 'save'],
    ]) {
      const help = await cli([...command, '--help'])
      expect(help.code, command.join(' ')).toBe(0)
      expect(help.stdout).toMatch(/^Usage: p2p-registry/)
    }
  })

  it('prints its version', async () => {
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'))
    expect(await cli(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n` })
  })
})
