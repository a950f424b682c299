import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const ROOT = join(import.meta.dirname, '../..')
const DEPCRUISE = join(ROOT, 'node_modules/.bin/depcruise')

/** Runs the project's layer rule (the depcruise step of `npm run lint`) on a tree of planted files. */
async function cruise(files: Record<string, string>): Promise<{ code: number; out: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'p2p-registry-layers-'))
  dirs.push(dir)
  await cp(join(ROOT, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'))
  await cp(join(ROOT, 'tsconfig.json'), join(dir, 'tsconfig.json'))
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true })
    await writeFile(join(dir, path), text)
  }
  try {
    const { stdout } = await run(DEPCRUISE, ['src', '--config', '.dependency-cruiser.cjs'], { cwd: dir })
    return { code: 0, out: stdout }
  } catch (err) {
    const { code, stdout } = err as { code: number; stdout: string }
    return { code, out: stdout }
  }
}
const dirs: string[] = []
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))))

describe('the layer rule', () => {
  it('fails on a back-import, naming the rule and both files', async () => {
    const { code, out } = await cruise({
      'src/agent/agent.ts': 'export const startAgent = () => 1\n',
      'src/model/node.ts': "import { startAgent } from '../agent/agent.ts'\nexport const x = startAgent()\n",
    })
    expect(code).not.toBe(0)
    expect(out).toContain('model-imports-only-downwards: src/model/node.ts → src/agent/agent.ts')
  })

  it('fails when support imports anything from src', async () => {
    const { code, out } = await cruise({
      'src/model/ids.ts': 'export const id = 1\n',
      'src/support/jitter.ts': "import { id } from '../model/ids.ts'\nexport const j = id\n",
    })
    expect(code).not.toBe(0)
    expect(out).toContain('support-imports-only-downwards')
  })

  it('passes imports that point down', async () => {
    const { code } = await cruise({
      'src/support/logger.ts': 'export const log = 1\n',
      'src/replica/replica.ts': "import { log } from '../support/logger.ts'\nexport const r = log\n",
      'src/http/app.ts': "import { r } from '../replica/replica.ts'\nexport const a = r\n",
    })
    expect(code).toBe(0)
  })
})
