import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { instanceIdForUrl } from '../../src/model/index.ts'
import { LevelStore } from '../../src/replica/level-store.ts'
import { openReplica } from '../replica/fixtures.ts'
import { call, startServer } from './fixtures.ts'

describe('acknowledged writes are durable', () => {
  let dir: string
  afterAll(() => rm(dir, { recursive: true, force: true }))

  it('an instance answered 201 and a delete answered 204 survive closing and reopening LevelDB', async () => {
    dir = await mkdtemp(join(tmpdir(), 'p2p-registry-http-durable-'))
    const s = await startServer({ dir })
    const url = 'http://127.0.0.1:8080/api'
    expect((await s.call('PUT', '/registry-svc/instance', { body: { url, slug: 'user-svc' } })).status).toBe(
      201,
    )
    expect(
      (
        await s.call('PUT', '/registry-svc/definition', {
          body: { definition: { id: 'd', image: { name: 'x' } } },
        })
      ).status,
    ).toBe(201)
    expect((await s.call('DELETE', '/registry-svc/definition/d')).status).toBe(204)
    const digest = s.replica.digest()
    await s.close()

    const reopened = await openReplica('node-a', { store: new LevelStore({ path: dir }), now: Date.now })
    try {
      expect(reopened.get('instance', instanceIdForUrl(url))).toMatchObject({
        url,
        slug: 'user-svc',
        status: 'Unknown',
      })
      expect(reopened.get('definition', 'd')).toBeUndefined()
      expect(reopened.entry('definition/d')?.value).toBeNull()
      expect(reopened.digest()).toBe(digest)
    } finally {
      await reopened.close()
    }
  })

  it('an instance answered 201 survives kill -9 of the serving process', async () => {
    const killDir = await mkdtemp(join(tmpdir(), 'p2p-registry-http-kill-'))
    try {
      const child = spawn(process.execPath, [join(import.meta.dirname, 'serve.ts'), killDir], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      const [chunk] = (await once(child.stdout!, 'data')) as [Buffer]
      const base = chunk.toString().trim()
      const urls = Array.from({ length: 20 }, (_, i) => `http://127.1.0.${i + 1}:8080`)
      for (const url of urls)
        expect((await call(base, 'PUT', '/registry-svc/instance', { body: { url, slug: 's' } })).status).toBe(
          201,
        )
      child.kill('SIGKILL')
      await once(child, 'exit')

      const reopened = await openReplica('node-a', {
        store: new LevelStore({ path: killDir }),
        now: Date.now,
      })
      try {
        for (const url of urls) expect(reopened.get('instance', instanceIdForUrl(url))?.url).toBe(url)
      } finally {
        await reopened.close()
      }
    } finally {
      await rm(killDir, { recursive: true, force: true })
    }
  })
})
