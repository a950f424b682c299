/**
 * Dashboard benchmark: page weight (what a browser downloads, gzipped, as the agent serves it) and time
 * to first render of the nodes and services views with a replica of 100,000 instances in 1,000 slugs,
 * in Debian's chromium driven by playwright-core.
 *
 *   npm run bench:ui -- [instances=100000] [slugs=1000] [runs=5]
 *
 * "First render" is the time from navigation start to the view's first table row in the DOM, read from
 * the page's own clock (performance.now()).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { startAgent } from '../src/agent/agent.ts'
import { loadConfig } from '../src/agent/config.ts'
import type { Change } from '../src/replica/change.ts'
import { createLogger } from '../src/support/logger.ts'

const INSTANCES = Number(process.argv[2] ?? 100_000)
const SLUGS = Number(process.argv[3] ?? 1000)
const RUNS = Number(process.argv[4] ?? 5)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const dir = await mkdtemp(join(tmpdir(), 'bench-ui-'))
const agent = await startAgent(
  {
    ...loadConfig({}, {}),
    nodeId: 'bench-ui',
    selfUrl: 'http://127.0.0.1:21999',
    dataDir: dir,
    httpAddr: { host: '127.0.0.1', port: 0 },
    dnsAddr: undefined,
    p2pListen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false,
    maxEntities: INSTANCES + 1000,
  },
  await createLogger('warn', false),
)
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
})
try {
  // Loaded as if synced from elsewhere, 1,000 at a time; instances of other nodes, not probed here.
  const ts = Date.now() - 1000
  for (let at = 0; at < INSTANCES; at += 1000) {
    const batch: Change[] = []
    for (let i = at; i < Math.min(at + 1000, INSTANCES); i++) {
      const ip = `127.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
      batch.push({
        kind: 'instance',
        id: `ui-${i}`,
        version: { ts, c: i, node: 'elsewhere' },
        value: {
          id: `ui-${i}`,
          url: `http://${ip}:8080`,
          scheme: 'http',
          ip,
          port: 8080,
          slug: `svc-${String(i % SLUGS).padStart(4, '0')}`,
          status: i % 10 === 0 ? 'Unreachable' : 'Healthy',
          nodeUrl: 'http://127.0.0.1:21998',
        },
      })
    }
    await agent.replica.apply(batch, 'sync')
  }
  console.log(`replica: ${agent.replica.counts().instances} instances in ${SLUGS} slugs`)

  const page = await browser.newPage()
  const transferred = new Map<string, number>()
  page.on('response', async (response) => {
    const url = new URL(response.url())
    if (!url.pathname.startsWith('/ui/')) return
    const length = Number((await response.allHeaders())['content-length'])
    transferred.set(url.pathname, length)
  })
  const times: Record<'nodes' | 'services', number[]> = { nodes: [], services: [] }
  for (let run = 0; run < RUNS; run++) {
    for (const [view, selector] of [
      ['nodes', '[data-node]'],
      ['services', '[data-slug]'],
    ] as const) {
      await page.goto('about:blank')
      await page.goto(`${agent.httpUrl}/ui/#${view}`)
      await page.locator(selector).first().waitFor({ timeout: 30_000 })
      times[view].push(await page.evaluate(() => performance.now()))
    }
  }
  const js = transferred.get('/ui/app.js') ?? Number.NaN
  const css = transferred.get('/ui/app.css') ?? Number.NaN
  const html = transferred.get('/ui/') ?? Number.NaN
  console.log(
    `page weight (gzip, as served): JS ${(js / 1024).toFixed(1)} KB + CSS ${(css / 1024).toFixed(1)} KB = ${((js + css) / 1024).toFixed(1)} KB; HTML ${(html / 1024).toFixed(1)} KB`,
  )
  const services = (await (await fetch(`${agent.httpUrl}/registry-svc/services`)).arrayBuffer()).byteLength
  console.log(
    `services summary the page follows: ${(services / 1024).toFixed(0)} KB for ${SLUGS} slugs (not the ${INSTANCES} instances)`,
  )
  for (const view of ['nodes', 'services'] as const) {
    const xs = times[view]
    console.log(
      `first render of ${view}: median ${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)} over ${RUNS} loads)`,
    )
  }
} finally {
  await browser.close()
  await agent.stop()
  await rm(dir, { recursive: true, force: true })
}
