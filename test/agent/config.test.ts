import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig, OPTIONS } from '../../src/agent/config.ts'
import { readmeTable } from '../support/readme.ts'

describe('agent configuration', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({}, {})
    expect(config.httpAddr).toEqual({ host: '127.0.0.1', port: 11337 })
    expect(config.p2pListen).toEqual(['/ip4/0.0.0.0/tcp/11338'])
    expect(config.peers).toEqual([])
    expect(config.mdns).toBe(true)
    expect(config.nodeId).toBeUndefined()
    expect(config.dataDir).toMatch(/\.p2p-registry$/)
    expect(config.maxDriftMs).toBe(5000)
    expect(config.tombstoneGraceMs).toBe(7 * 24 * 3600 * 1000)
  })

  it('takes flags over environment variables', () => {
    const config = loadConfig(
      { nodeId: 'from-flag', peers: '/ip4/127.0.0.1/tcp/11338' },
      { OB_NODE_ID: 'from-env', OB_PEERS: 'a:1, b:2', OB_MDNS: 'off', OB_HTTP_ADDR: '0.0.0.0:8080' },
    )
    expect(config.nodeId).toBe('from-flag')
    expect(config.peers).toEqual(['/ip4/127.0.0.1/tcp/11338'])
    expect(config.mdns).toBe(false)
    expect(config.httpAddr).toEqual({ host: '0.0.0.0', port: 8080 })
  })

  it.each([
    [{ OB_HEARTBEAT_MS: 'abc' }, 'OB_HEARTBEAT_MS must be an integer'],
    [{ OB_HTTP_ADDR: 'localhost' }, 'OB_HTTP_ADDR must be host:port'],
    [{ OB_NODE_ID: 'bad/id' }, 'OB_NODE_ID must be 1-128'],
    [{ OB_SELF_URL: 'not a url' }, 'OB_SELF_URL must be an absolute URL'],
    [{ OB_MDNS: 'maybe' }, 'OB_MDNS must be true or false'],
    [{ OB_LOG_LEVEL: 'loud' }, 'OB_LOG_LEVEL must be one of'],
  ])('rejects %o with an error naming the variable', (env, message) => {
    expect(() => loadConfig({}, env)).toThrow(ConfigError)
    expect(() => loadConfig({}, env)).toThrow(message)
  })

  it('takes the probe networks as CIDRs and names a bad one', () => {
    expect(loadConfig({}, { OB_PROBE_NETWORKS: '127.0.0.0/8, fd00::/8' }).probeNetworks).toEqual([
      '127.0.0.0/8',
      'fd00::/8',
    ])
    expect(loadConfig({}, {}).probeNetworks).toEqual([])
    expect(() => loadConfig({}, { OB_PROBE_NETWORKS: '127.0.0.0/8,lan' })).toThrow(
      'OB_PROBE_NETWORKS: "lan" is not a network in CIDR form (e.g. 10.0.0.0/8 or fd00::/8)',
    )
  })

  it('names the flag when the bad value came from a flag', () => {
    expect(() => loadConfig({ heartbeatIntervalMs: '5' }, {})).toThrow('--heartbeat-ms must be an integer')
  })

  it("is the README's configuration table, row for row: variable, flag and default", async () => {
    const rows = (await readmeTable('## Configuration')).map(([env, flag, fallback]) => [env, flag, fallback])
    expect(rows).toEqual(OPTIONS.map((o) => [`\`${o.env}\``, `\`${o.flag}\``, o.default]))
  })
})
