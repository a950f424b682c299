/**
 * The dashboard (`GET /ui/`) in a real browser: Debian's chromium driven by playwright-core (nothing
 * downloaded), against a real 3-agent cluster in this process. Screenshots of each view go to
 * test-artifacts/ui/.
 */
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type TestAgent, type TestCluster, waitMeshed } from '../support/cluster.ts'
import { waitFor } from '../support/wait.ts'

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find(existsSync)
if (CHROMIUM === undefined && process.env.CI)
  throw new Error('chromium is not installed (apt-get install chromium)')
const ARTIFACTS = new URL('../../test-artifacts/ui/', import.meta.url).pathname
const ADMIN = 'dashboard-admin-token-0123'

describe.skipIf(CHROMIUM === undefined)(
  'the dashboard in a browser (skipped: no chromium; apt-get install chromium)',
  () => {
    let cluster: TestCluster
    let dir: string
    let browser: Browser
    let page: Page
    let a: TestAgent
    let b: TestAgent
    const problems: string[] = []

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'dashboard-'))
      await writeFile(join(dir, 'tokens.yaml'), `- token: ${ADMIN}\n  role: admin\n`)
      cluster = await startCluster(3, { probeIntervalMs: 200, apiTokensFile: join(dir, 'tokens.yaml') })
      await waitMeshed(cluster.agents)
      await waitFor('every node record everywhere', () =>
        cluster.agents.every((x) => x.replica.nodes().length === 3),
      )
      ;[a, b] = cluster.agents as [TestAgent, TestAgent]
      await mkdir(ARTIFACTS, { recursive: true })
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] })
      page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
      page.on('console', (message) => {
        // A refused write (the token test) is logged by the browser as a failed resource load: that
        // is the API answering as it should, not an error of the page.
        if (message.type() === 'error' && !message.text().startsWith('Failed to load resource'))
          problems.push(`console: ${message.text()}`)
      })
    }, 60_000)
    afterAll(async () => {
      await browser?.close()
      await cluster?.stop()
      await rm(dir, { recursive: true, force: true })
    })

    const rows = (selector: string) => page.locator(selector).count()

    it('lists every node of the cluster from any agent, with liveness and replica sync', async () => {
      await page.goto(`${a.httpUrl}/ui/`)
      await page.locator('[data-node]').nth(2).waitFor({ timeout: 5000 })
      expect(await rows('[data-node]')).toBe(3)
      for (const agent of cluster.agents)
        await expect
          .poll(() => page.locator(`[data-node="${agent.config.nodeId}"] .pill`).textContent())
          .toBe('alive')
      expect(await page.locator(`[data-node="${a.config.nodeId}"]`).textContent()).toContain('in sync')
      await page.screenshot({ path: join(ARTIFACTS, 'nodes.png'), fullPage: true })
    })

    it('shows an instance registered through another agent within a second, without reload, and its status changes', async () => {
      await page.goto(`${a.httpUrl}/ui/#services`)
      await page.locator('#services-title').waitFor()
      const server = await listening()
      const written = Date.now()
      const put = await b.http.inject({
        method: 'PUT',
        url: '/registry-svc/instance',
        headers: { authorization: `Bearer ${ADMIN}` },
        payload: {
          slug: 'orders',
          url: `http://127.0.0.1:${server.port}`,
          check: { type: 'tcp', intervalMs: 200 },
        },
      })
      expect(put.statusCode).toBe(201)
      await page.locator('[data-slug="orders"]').waitFor({ timeout: 1000 })
      expect(Date.now() - written).toBeLessThan(1000)
      await page.screenshot({ path: join(ARTIFACTS, 'services.png'), fullPage: true })

      await page.locator('[data-slug="orders"] a').click()
      const status = page.locator('[data-instance] .pill')
      await expect.poll(() => status.textContent(), { timeout: 5000 }).toBe('Healthy')
      await page.screenshot({ path: join(ARTIFACTS, 'instances.png'), fullPage: true })
      server.server.close()
      await expect.poll(() => status.textContent(), { timeout: 5000 }).toBe('Unreachable')
    })

    it('turns a killed node unreachable on the page', async () => {
      await page.goto(`${a.httpUrl}/ui/#nodes`)
      const c = cluster.agents[2]!
      await page.locator(`[data-node="${c.config.nodeId}"]`).waitFor()
      await c.stop()
      await expect
        .poll(() => page.locator(`[data-node="${c.config.nodeId}"] .pill`).textContent(), { timeout: 10_000 })
        .toBe('unreachable')
    })

    it("refuses a bad token with the API's message, and writes with a good one", async () => {
      await page.goto(`${a.httpUrl}/ui/#services/orders`)
      await page.locator('#instances-title').waitFor()
      await page.getByLabel('API token').fill('not-a-token')
      await page.getByRole('button', { name: 'Use' }).click()
      await page.getByLabel('Register an instance at').fill('http://127.0.0.1:9')
      await page.getByRole('button', { name: 'Register', exact: true }).click()
      const alert = page.getByRole('alert')
      await expect.poll(() => alert.textContent()).toMatch(/token/i)
      const refused = await alert.textContent()
      // The page shows the API's own words.
      const api = await a.http.inject({
        method: 'PUT',
        url: '/registry-svc/instance',
        headers: { authorization: 'Bearer not-a-token' },
        payload: { slug: 'orders', url: 'http://127.0.0.1:9' },
      })
      expect(refused).toBe(api.json().error)
      expect(a.replica.instances({ slug: 'orders' })).toHaveLength(1)

      await page.getByLabel('API token').fill(ADMIN)
      await page.getByRole('button', { name: 'Change' }).click()
      await page.getByRole('button', { name: 'Register', exact: true }).click()
      await expect.poll(() => page.locator('[data-instance]').count()).toBe(2)

      await page.goto(`${a.httpUrl}/ui/#definitions`)
      await page.getByRole('button', { name: 'Save' }).click()
      await page.locator('[data-definition="web"]').waitFor()
      await page.screenshot({ path: join(ARTIFACTS, 'definitions.png'), fullPage: true })
    })

    it('works at phone width, and logged no errors', async () => {
      await page.setViewportSize({ width: 390, height: 800 })
      await page.goto(`${a.httpUrl}/ui/#services`)
      await page.locator('[data-slug="orders"]').waitFor()
      await page.screenshot({ path: join(ARTIFACTS, 'services-phone.png'), fullPage: true })
      expect(problems).toEqual([])
    })
  },
)

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.end())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as { port: number }).port }
}
