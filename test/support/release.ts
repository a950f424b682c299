import { execFile } from 'node:child_process'
import { access, mkdir, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const ROOT = join(import.meta.dirname, '../..')

/**
 * The last release: the commit that landed last (round 2, session 1; before it, b1fbe5a of round 1).
 * Mixed-version tests run its bundle next to this build's. Move it forward when a release lands.
 */
export const LAST_RELEASE = 'c1ede90be8d8d426d4ecbbe527bcd41e8fba3c9f'

/**
 * Builds the agent bundle of `commit` from this repository's history, with this checkout's
 * node_modules, and returns the path of its bin. Built once per machine (kept in the temp dir).
 */
export async function buildRelease(commit: string): Promise<string> {
  const dir = join(tmpdir(), `p2p-registry-release-${commit}`)
  const bin = join(dir, 'dist/p2p-registry.mjs')
  if (await exists(bin)) return bin
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  if (!(await hasCommit(commit))) {
    // A shallow clone: the origin (a local path or a reachable remote) may still have it.
    await run('git', ['-C', ROOT, 'fetch', '--quiet', '--depth=1', 'origin', commit]).catch(() => undefined)
  }
  if (!(await hasCommit(commit))) throw new ReleaseUnavailableError(commit)
  await run('bash', ['-c', 'set -o pipefail; git -C "$0" archive "$1" | tar -x -C "$2"', ROOT, commit, dir])
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  await run(process.execPath, ['scripts/bundle.ts'], { cwd: dir })
  return bin
}

/** The repository's history does not hold the release (a shallow clone whose origin does not have it). */
export class ReleaseUnavailableError extends Error {
  override readonly name = 'ReleaseUnavailableError'
  constructor(commit: string) {
    super(
      `commit ${commit} is not in this clone's history, and its origin could not provide it (a shallow clone?)`,
    )
  }
}

async function hasCommit(commit: string): Promise<boolean> {
  return run('git', ['-C', ROOT, 'cat-file', '-e', `${commit}^{commit}`]).then(
    () => true,
    () => false,
  )
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  )
}
