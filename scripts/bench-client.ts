/**
 * What the client library costs a caller (issue 14): ns per `Service.pick()`, and `Service.fetch` over
 * a bare `fetch` to the same instance, as a ratio measured in the same run (rounds alternate A and B).
 * One real agent in this process (its HTTP API on loopback), one HTTP server answering `ok`.
 *
 *   npm run bench:client [-- ROUNDS=5 PICKS=1000000 REQUESTS=2000]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startAgent } from '../src/agent/agent.ts'
import { loadConfig } from '../src/agent/config.ts'
import { createClient } from '../src/client/index.ts'
import { createLogger } from '../src/support/logger.ts'

const ROUNDS = Number(process.argv[2] ?? 5)
const PICKS = Number(process.argv[3] ?? 1_000_000)
const REQUESTS = Number(process.argv[4] ?? 2_000)

const dir = await mkdtemp(join(tmpdir(), 'p2p-registry-bench-client-'))
const agent = await startAgent(
  {
    ...loadConfig({}, {}),
    nodeId: 'bench',
    selfUrl: 'http://127.0.0.1:1',
    httpAddr: { host: '127.0.0.1', port: 0 },
    p2pListen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false,
    dataDir: dir,
    logLevel: 'warn',
    probeIntervalMs: 200,
  },
  await createLogger('warn'),
)
const server = createServer((_req, res) => res.end('ok'))
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const target = `http://127.0.0.1:${(server.address() as { port: number }).port}`

try {
  const client = createClient({ url: agent.httpUrl })
  // The agent's URL is not the instance's nodeUrl owner here: give the instances a nodeUrl of this agent.
  const self = (await client.api.self()).url
  for (let i = 0; i < 3; i++) {
    await client.api.register({
      url: `${target}/i${i}`,
      slug: 'many',
      nodeUrl: self,
      check: { type: 'http' },
    })
  }
  await client.api.register({ url: target, slug: 'one', nodeUrl: self, check: { type: 'http' } })
  const many = client.service('many')
  const one = client.service('one')
  const healthy = async (s: typeof many, n: number) => {
    while (s.instances().filter((i) => i.status === 'Healthy').length < n)
      await new Promise((r) => setTimeout(r, 50))
  }
  await healthy(many, 3)
  await healthy(one, 1)

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!
  const range = (values: number[], digits: number) =>
    `${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)}`

  const pickNs: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    const started = process.hrtime.bigint()
    for (let i = 0; i < PICKS; i++) many.pick()
    pickNs.push(Number(process.hrtime.bigint() - started) / PICKS)
  }

  const perRequest = async (call: () => Promise<Response>) => {
    const started = process.hrtime.bigint()
    for (let i = 0; i < REQUESTS; i++) await (await call()).text()
    return Number(process.hrtime.bigint() - started) / REQUESTS / 1000
  }
  const bare: number[] = []
  const viaService: number[] = []
  const ratios: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    const b = await perRequest(() => fetch(`${target}/x`))
    const s = await perRequest(() => one.fetch('/x'))
    bare.push(b)
    viaService.push(s)
    ratios.push(s / b)
  }
  console.log(`client: ${ROUNDS} rounds, medians (ranges); Node ${process.version}`)
  console.log(
    `Service.pick() over 3 Healthy instances: ${median(pickNs).toFixed(0)} ns (${range(pickNs, 0)})`,
  )
  console.log(
    `sequential GET to one instance: bare fetch ${median(bare).toFixed(0)} µs (${range(bare, 0)}), ` +
      `Service.fetch ${median(viaService).toFixed(0)} µs (${range(viaService, 0)}); ` +
      `ratio ${median(ratios).toFixed(3)} (${range(ratios, 3)})`,
  )
  many.close()
  one.close()
} finally {
  server.close()
  await agent.stop()
  await rm(dir, { recursive: true, force: true })
}
