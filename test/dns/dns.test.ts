/**
 * The agent's DNS server with `dig` (Debian's bind9-dnsutils) as the client, against real agents in
 * this process: every kind of name, NXDOMAIN and REFUSED, a 200-instance answer (TC over UDP, whole over
 * TCP), answers that follow health and writes made elsewhere, and garbage that must not stop it.
 */
import { execFile, spawnSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { connect, createServer, type Server } from 'node:net'
import { promisify } from 'node:util'
import dnsPacket from 'dns-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DnsAnswers, DnsServer } from '../../src/dns/index.ts'
import { ReadModel } from '../../src/http/index.ts'
import { createLogger } from '../../src/support/logger.ts'
import { startCluster, type TestAgent, type TestCluster, waitMeshed } from '../support/cluster.ts'
import { seeded } from '../support/random.ts'
import { waitFor } from '../support/wait.ts'

const run = promisify(execFile)
const PROBE_MS = 300

interface DigAnswer {
  status: string
  flags: string[]
  answer: string[]
  authority: string[]
  additional: string[]
}

/** `dig @agent name type [options]`, its response split into sections (records as `name type data`). */
async function dig(agent: TestAgent, name: string, type: string, ...options: string[]): Promise<DigAnswer> {
  const { host, port } = agent.dnsAddr!
  const { stdout } = await run('dig', [
    `@${host}`,
    '-p',
    String(port),
    name,
    type,
    '+tries=1',
    '+time=2',
    '+noall',
    '+comments',
    '+answer',
    '+authority',
    '+additional',
    ...options,
  ])
  const result: DigAnswer = { status: '', flags: [], answer: [], authority: [], additional: [] }
  let section: 'answer' | 'authority' | 'additional' | undefined
  for (const line of stdout.split('\n')) {
    const header = /status: (\w+)/.exec(line)
    if (header) result.status = header[1]!
    const flags = /^;; flags: ([a-z ]+);/.exec(line)
    if (flags) result.flags = flags[1]!.trim().split(' ')
    const heading = /^;; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:/.exec(line)
    if (heading) section = heading[1]!.toLowerCase() as typeof section
    else if (line.trim() === '') section = undefined
    else if (section && !line.startsWith(';')) {
      const [owner, , , rtype, ...data] = line.split(/\s+/)
      if (rtype !== 'OPT') result[section].push(`${owner} ${rtype} ${data.join(' ')}`)
    }
  }
  return result
}

const data = (records: string[]) => records.map((r) => r.split(' ').slice(1).join(' ')).sort()

async function listening(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.end())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as { port: number }).port }
}

// dig is the client (Debian's bind9-dnsutils; .ci/run installs it). Without it the tests cannot run:
// skipped with this message locally, a failure in CI.
const DIG_MISSING = spawnSync('dig', ['-v']).error !== undefined
if (DIG_MISSING && process.env.CI) throw new Error('dig is not installed (apt-get install bind9-dnsutils)')

describe.skipIf(DIG_MISSING)('DNS (skipped: dig is not installed; apt-get install bind9-dnsutils)', () => {
  let cluster: TestCluster
  let a: TestAgent
  let b: TestAgent
  const put = (agent: TestAgent, body: object) =>
    agent.http.inject({ method: 'PUT', url: '/registry-svc/instance', payload: body })
  beforeAll(async () => {
    cluster = await startCluster(2, { probeIntervalMs: PROBE_MS })
    await waitMeshed(cluster.agents)
    ;[a, b] = cluster.agents as [TestAgent, TestAgent]
    await waitFor('both node records everywhere', () =>
      cluster.agents.every((x) => x.replica.nodes().length === 2),
    )
  }, 60_000)
  afterAll(() => cluster?.stop())

  it('answers A, AAAA, SRV (with the targets resolved), tags, RFC 2782 names and nodes', async () => {
    const none = { type: 'none' }
    await put(a, { slug: 'users', url: 'http://127.0.0.1:8081', tags: ['blue'], check: none })
    await put(a, { slug: 'users', url: 'http://127.0.0.2:8082', tags: ['green'], check: none })
    await put(a, { slug: 'users', url: 'http://[::1]:8083', tags: ['blue'], check: none })
    // Unknown instances are answered while none is Healthy (a service whose checks have not run).
    const aRecords = await dig(a, 'users.service.p2p', 'A')
    expect(aRecords.status).toBe('NOERROR')
    expect(aRecords.flags).toContain('aa')
    expect(data(aRecords.answer)).toEqual(['A 127.0.0.1', 'A 127.0.0.2'])
    expect(data((await dig(a, 'USERS.Service.P2P.', 'AAAA')).answer)).toEqual(['AAAA ::1'])

    const srv = await dig(a, 'users.service.p2p', 'SRV')
    expect(srv.answer).toHaveLength(3)
    // Each SRV target resolves in the same answer's additional section.
    for (const record of srv.answer) {
      const [, , , , port, target] = record.split(' ')
      const address = srv.additional.find((r) => r.startsWith(`${target} `))
      expect(address, `${target} in the additional section`).toBeDefined()
      expect(['8081', '8082', '8083']).toContain(port)
      const { answer } = await dig(a, target!, address!.split(' ')[1]!)
      expect(answer.map((r) => r.split(' ').slice(1).join(' '))).toEqual([
        address!.split(' ').slice(1).join(' '),
      ])
    }
    expect(data((await dig(a, '_users._tcp.service.p2p', 'SRV')).answer)).toEqual(data(srv.answer))

    expect(data((await dig(a, 'blue.users.service.p2p', 'A')).answer)).toEqual(['A 127.0.0.1'])
    expect(data((await dig(a, '_users._green.service.p2p', 'SRV')).answer)).toEqual([
      expect.stringMatching(/^SRV 1 1 8082 inst_\w+\.instance\.p2p\.$/),
    ])
    expect(data((await dig(a, `${b.config.nodeId}.node.p2p`, 'A')).answer)).toEqual(['A 127.0.0.1'])
  })

  it('answers NXDOMAIN with an SOA for unknown names, no records for a slug with nothing up, REFUSED outside', async () => {
    for (const name of ['nobody.service.p2p', 'x.y.z.service.p2p', 'ghost.node.p2p', 'what.p2p']) {
      const answer = await dig(a, name, 'A')
      expect(answer.status, name).toBe('NXDOMAIN')
      expect(answer.authority, name).toEqual([
        expect.stringMatching(/^p2p\. SOA ns\.p2p\. hostmaster\.p2p\. \d+ /),
      ])
    }
    // Nothing listens on 127.0.0.1:9: the owner's check makes it Unreachable.
    await put(a, { slug: 'down', url: 'http://127.0.0.1:9' })
    await waitFor(
      'down is Unreachable',
      () => a.replica.instances({ slug: 'down' })[0]?.status === 'Unreachable',
    )
    const down = await dig(a, 'down.service.p2p', 'A')
    expect(down.status).toBe('NOERROR')
    expect(down.answer).toEqual([])
    expect(down.authority).toHaveLength(1)

    const outside = await dig(a, 'example.com', 'A')
    expect(outside.status).toBe('REFUSED')
    expect(outside.answer).toEqual([])
  })

  it('sets TC on a 200-instance answer over UDP, and gives all 200 over TCP', async () => {
    for (let i = 0; i < 200; i++)
      await put(a, {
        slug: 'big',
        url: `http://127.0.${Math.floor(i / 250) + 10}.${(i % 250) + 1}:80`,
        check: { type: 'none' },
      })
    const udp = await dig(a, 'big.service.p2p', 'A', '+ignore', '+bufsize=1232')
    expect(udp.flags).toContain('tc')
    expect(udp.answer.length).toBeGreaterThan(0)
    expect(udp.answer.length).toBeLessThan(200)
    const plain = await dig(a, 'big.service.p2p', 'A', '+ignore', '+noedns')
    expect(plain.flags).toContain('tc')
    expect(plain.answer.length).toBeLessThan(udp.answer.length)
    const tcp = await dig(a, 'big.service.p2p', 'A', '+tcp')
    expect(tcp.flags).not.toContain('tc')
    expect(new Set(tcp.answer).size).toBe(200)
    // dig without +ignore retries over TCP by itself, as resolvers do.
    expect((await dig(a, 'big.service.p2p', 'SRV')).answer).toHaveLength(200)
  })

  it('drops an instance within a check interval of its going down, and shows a write made on another agent', async () => {
    const { server, port } = await listening()
    await put(a, {
      slug: 'flaky',
      url: `http://127.0.0.1:${port}`,
      check: { type: 'tcp', intervalMs: PROBE_MS },
    })
    await waitFor('flaky Healthy', () => a.replica.instances({ slug: 'flaky' })[0]?.status === 'Healthy')
    expect(data((await dig(a, 'flaky.service.p2p', 'A')).answer)).toEqual(['A 127.0.0.1'])
    server.close()
    const stoppedAt = Date.now()
    await waitFor(
      'flaky gone from the answer',
      async () => (await dig(a, 'flaky.service.p2p', 'A')).answer.length === 0,
    )
    // One check interval, plus the time dig itself takes (a process per query).
    expect(Date.now() - stoppedAt).toBeLessThan(PROBE_MS + 700)

    await put(b, { slug: 'elsewhere', url: 'http://127.0.0.3:80', check: { type: 'none' } })
    await waitFor(
      'the write on b answered by a',
      async () => (await dig(a, 'elsewhere.service.p2p', 'A')).answer.length === 1,
    )
  })

  it('survives random and truncated packets over UDP and TCP, counting them, and keeps answering', async () => {
    // FUZZ_SEED=n replays a run.
    const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32))
    const random = seeded(seed)
    const byte = () => Math.floor(random() * 256)
    const { host, port } = a.dnsAddr!
    const query = (id: number) =>
      dnsPacket.encode({
        type: 'query',
        id,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ type: 'SRV', name: 'users.service.p2p' }],
      })
    const malformed = async () => {
      const metrics = (await a.http.inject({ url: '/metrics' })).body
      return Number(/p2p_registry_dns_malformed_total\{transport="udp"\} (\d+)/.exec(metrics)?.[1])
    }
    const before = await malformed()
    const udp = createSocket('udp4')
    const answers: Buffer[] = []
    udp.on('message', (message) => answers.push(message))
    let truncated = 0
    for (let batch = 0; batch < 20; batch++) {
      for (let i = 0; i < 100; i++) {
        let packet: Buffer
        if (i % 2 === 0) {
          // Random bytes, some with a query's header in front (so they get past the header).
          packet = Buffer.from(Array.from({ length: Math.floor(random() * 600) }, byte))
          if (i % 4 === 0) packet = Buffer.concat([query(i).subarray(0, 12), packet])
        } else {
          packet = Buffer.from(query(i).subarray(0, Math.floor(random() * (query(i).length - 1))))
          truncated++
        }
        await new Promise((resolve) => udp.send(packet, port, host, resolve))
      }
      // A valid query after each batch: once it is answered, the batch before it was handled (one
      // socket, read in order), so the server is never just flooded past its buffer.
      const answered = answers.length
      await new Promise((resolve) => udp.send(query(60_000 + batch), port, host, resolve))
      await waitFor('the query after the batch answered', () =>
        answers.slice(answered).some((m) => m.readUInt16BE(0) === 60_000 + batch),
      )
    }
    // TCP: a frame of garbage, a frame longer than what follows; both connections end.
    for (const bytes of [Buffer.from([0, 5, 1, 2, 3, 4, 5]), Buffer.from([0xff, 0xff, 1, 2])]) {
      const socket = connect(port, host)
      await once(socket, 'connect')
      socket.end(bytes)
      await once(socket, 'close')
    }
    await new Promise<void>((resolve) => udp.close(() => resolve()))
    expect((await dig(a, 'users.service.p2p', 'SRV')).answer, `FUZZ_SEED=${seed}`).toHaveLength(3)
    // Every truncated query was dropped and counted (random bytes may happen to decode).
    expect((await malformed()) - before, `FUZZ_SEED=${seed}`).toBeGreaterThanOrEqual(truncated)
    const metrics = (await a.http.inject({ url: '/metrics' })).body
    expect(metrics).toMatch(
      /p2p_registry_dns_queries_total\{qtype="SRV",rcode="NOERROR",transport="udp"\} \d+/,
    )
  })

  it('closes a TCP client that sends nothing, after its idle timeout', async () => {
    const read = new ReadModel({}, { replica: a.replica })
    const server = new DnsServer(
      { host: '127.0.0.1', port: 0, tcpIdleMs: 300 },
      {
        answers: new DnsAnswers({ domain: 'p2p', ttlS: 5 }, read),
        log: await createLogger('silent'),
      },
    )
    await server.start()
    try {
      const socket = connect(server.address().port, '127.0.0.1')
      await once(socket, 'connect')
      const openedAt = Date.now()
      await once(socket, 'close')
      expect(Date.now() - openedAt).toBeGreaterThanOrEqual(250)
    } finally {
      await server.stop()
      read.close()
    }
  })
})
