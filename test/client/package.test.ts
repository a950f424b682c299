/**
 * The package is publishable, not only usable from its clone: `npm pack`, install the tarball into an
 * empty project (offline: the package has no dependencies), and there `p2p-registry/client` imports
 * with its types and `npx p2p-registry agent` starts an agent that the installed client talks to.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AgentProcess, startAgentProcess } from '../support/process-agent.ts'

const run = promisify(execFile)
const ROOT = new URL('../..', import.meta.url).pathname
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')
// The agent needs Node 22+: the installed bin's `#!/usr/bin/env node` must find this (the project's) Node.
const PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH}`
// The client promises Node 20: run it with the machine's Node 20 when there is one.
const NODE_20 = ['/usr/bin/node', '/usr/local/bin/node'].find(existsSync)

describe('the packed package', () => {
  let dir: string
  let app: string
  let agent: AgentProcess | undefined
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'p2p-registry-pack-'))
    // npm test has built dist/; packing runs no scripts, so it packs exactly that.
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
      cwd: ROOT,
    })
    const [{ filename }] = JSON.parse(stdout) as [{ filename: string }]
    app = join(dir, 'app')
    await run('mkdir', [app])
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
    await run('npm', ['install', join(dir, filename), '--offline', '--no-audit', '--no-fund'], {
      cwd: app,
      env: { ...process.env, PATH },
    })
  }, 120_000)
  afterAll(async () => {
    if (agent?.child.pid !== undefined && agent.child.exitCode === null) {
      process.kill(-agent.child.pid, 'SIGTERM')
      await agent.exited()
    }
    await rm(dir, { recursive: true, force: true })
  })

  /** tsc's complaints about the app, '' when there are none. */
  const typecheck = () =>
    run(process.execPath, [TSC, '-p', app], { cwd: app }).then(
      () => '',
      (err: { stdout: string }) => err.stdout,
    )

  it('holds the bundles and the client types, and no sources or dependencies', async () => {
    const installed = join(app, 'node_modules/p2p-registry')
    const files = await readdir(join(installed, 'dist'))
    expect(files).toEqual(
      expect.arrayContaining(['p2p-registry.mjs', 'client.mjs', 'client', 'classic-level']),
    )
    expect(files.some((f) => f.startsWith('cluster-child'))).toBe(false)
    expect(existsSync(join(installed, 'src'))).toBe(false)
    // Nothing but the package itself was installed.
    expect(await readdir(join(app, 'node_modules'))).toEqual(expect.arrayContaining(['p2p-registry']))
    expect((await readdir(join(app, 'node_modules'))).filter((f) => !f.startsWith('.'))).toEqual([
      'p2p-registry',
    ])
  })

  it("type-checks a service's code against p2p-registry/client, and rejects a wrong use", async () => {
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          lib: ['ES2022', 'DOM'],
          types: [],
          strict: true,
          noEmit: true,
        },
        include: ['*.ts'],
      }),
    )
    await writeFile(
      join(app, 'caller.ts'),
      [
        "import { createClient, type Instance, RegistryError } from 'p2p-registry/client'",
        "const client = createClient({ url: 'http://127.0.0.1:11337' })",
        "const users = client.service('user-svc', { strategy: 'p2c', zone: 'eu-1a' })",
        'const picked: Instance | undefined = users.pick()',
        "const response: Response = await users.fetch('/health')",
        'const e: RegistryError | undefined = undefined',
        'export { picked, response, e }',
      ].join('\n'),
    )
    expect(await typecheck()).toBe('')

    await writeFile(
      join(app, 'wrong.ts'),
      "import { createClient } from 'p2p-registry/client'\nconst n: number = createClient().service('x').slug\nexport { n }\n",
    )
    expect(await typecheck()).toContain(
      "wrong.ts(2,7): error TS2322: Type 'string' is not assignable to type 'number'",
    )
    await rm(join(app, 'wrong.ts'))
  })

  it('starts an agent with `npx p2p-registry agent`, and the installed client registers and finds an instance', async () => {
    agent = startAgentProcess({ OB_DATA_DIR: join(dir, 'data'), PATH }, undefined, {
      command: 'npx',
      args: ['--offline', 'p2p-registry', 'agent'],
      cwd: app,
    })
    const started = await agent.waitFor('agent started', 30_000)
    await writeFile(
      join(app, 'use.mjs'),
      `import { createClient } from 'p2p-registry/client'
const client = createClient({ url: process.argv[2] })
await client.api.register({ id: 'packed-1', slug: 'packed-svc', url: 'http://127.0.0.1:9' })
const found = await client.api.instances({ slug: 'packed-svc' })
console.log(JSON.stringify({ node: process.versions.node, ids: found.map((i) => i.id) }))
`,
    )
    const { stdout } = await run(
      NODE_20 ?? process.execPath,
      [join(app, 'use.mjs'), started.http as string],
      {
        cwd: app,
      },
    )
    const result = JSON.parse(stdout) as { node: string; ids: string[] }
    expect(result.ids).toEqual(['packed-1'])
    if (NODE_20) expect(Number(result.node.split('.')[0])).toBeGreaterThanOrEqual(20)
  })
})
