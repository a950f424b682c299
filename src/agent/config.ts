import { homedir, hostname } from 'node:os'
import { join } from 'node:path'
import { isDomain } from '../dns/index.ts'
import { DEFAULT_BODY_LIMIT_BYTES, DEFAULT_MAX_WATCHERS } from '../http/index.ts'
import {
  DEFAULT_CHECK_TYPE,
  DEFAULT_DEREGISTER_AFTER_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_NODE_REAP_AFTER_MS,
  DEFAULT_PROBE_INTERVAL_MS,
  DEFAULT_SELF_PRESERVATION_RATIO,
  ProbeNetworks,
} from '../liveness/index.ts'
import { CHECK_TYPES, type CheckType, isIdentifier, MAX_DEREGISTER_AFTER_MS } from '../model/index.ts'
import { DEFAULT_MAX_DRIFT_MS } from '../replica/hlc.ts'
import { DEFAULT_MAX_ENTITIES, DEFAULT_TOMBSTONE_GRACE_MS } from '../replica/replica.ts'

/**
 * Every agent option, documented once. Each has an environment variable and a flag of
 * `p2p-registry agent`; the flag wins over the variable, the variable over the default.
 * The README's configuration table is checked against this list by a test.
 */
export interface AgentConfig {
  /** This node's id. @default generated once (`node_…`) and kept in the data dir */
  nodeId: string | undefined
  /** URL other nodes and tools use for this node. @default `http://<hostname>:<http port>` */
  selfUrl: string | undefined
  /** host:port of the local HTTP API. Loopback by default: reads need no token. @default 127.0.0.1:11337 */
  httpAddr: { host: string; port: number }
  /** libp2p listen multiaddrs. @default /ip4/0.0.0.0/tcp/11338 */
  p2pListen: string[]
  /** Seed peers: multiaddrs (with or without /p2p/<id>) or host:port. @default none */
  peers: string[]
  /** Where LevelDB, the node id and the libp2p key live. @default ~/.p2p-registry */
  dataDir: string
  /** Shared secret of a private cluster; peers without it cannot connect. @default none */
  clusterKey: string | undefined
  /** Bearer token every mutating HTTP request must carry. @default none */
  apiToken: string | undefined
  /** Interval between node heartbeats, ms. Detection takes a few of these. @default DEFAULT_HEARTBEAT_INTERVAL_MS */
  heartbeatIntervalMs: number
  /** Find peers on the LAN with mDNS. @default true */
  mdns: boolean
  /** Largest clock lead accepted from a peer, ms. @default DEFAULT_MAX_DRIFT_MS */
  maxDriftMs: number
  /** How long tombstones are kept, ms; also the longest absence after which a node keeps its replica. @default DEFAULT_TOMBSTONE_GRACE_MS */
  tombstoneGraceMs: number
  /** Largest HTTP request body, bytes. @default DEFAULT_BODY_LIMIT_BYTES */
  bodyLimitBytes: number
  /** Most entries (entities and tombstones) the replica holds per kind. @default DEFAULT_MAX_ENTITIES */
  maxEntities: number
  /** Log level (fatal, error, warn, info, debug, trace, silent). @default info */
  logLevel: string
  /** Availability zone written into this node's record. @default none */
  availabilityZone: string | undefined
  /** Region written into this node's record. @default none */
  region: string | undefined
  /** How often this agent TCP-probes each instance it owns (nodeUrl = its URL), ms. @default DEFAULT_PROBE_INTERVAL_MS */
  probeIntervalMs: number
  /** Networks (CIDRs) the agent may probe; empty: any. @default any */
  probeNetworks: string[]
  /** The check of an instance registered without one. @default DEFAULT_CHECK_TYPE */
  defaultCheck: CheckType
  /** Delete an owned instance down this long without a break, ms; 0 never. @default DEFAULT_DEREGISTER_AFTER_MS */
  deregisterAfterMs: number
  /** Delete the instances and record of a node unreachable this long, ms; 0 never. @default DEFAULT_NODE_REAP_AFTER_MS */
  nodeReapAfterMs: number
  /** Above this share of known nodes unreachable, make no automatic deletion of others' data. @default DEFAULT_SELF_PRESERVATION_RATIO */
  selfPreservationRatio: number
  /** YAML or JSON list of tokens with roles (and slugs). @default none */
  apiTokensFile: string | undefined
  /** Reads need a token too. @default false */
  readsNeedToken: boolean
  /** Watch streams and blocking queries held open at once. @default DEFAULT_MAX_WATCHERS */
  maxWatchers: number
  /** host:port of the DNS server (UDP and TCP), or undefined (`off`). @default 127.0.0.1:8600 */
  dnsAddr: { host: string; port: number } | undefined
  /** The DNS domain the agent answers for. @default p2p */
  dnsDomain: string
  /** TTL of DNS answers, seconds. @default DEFAULT_DNS_TTL_S */
  dnsTtlS: number
}

/** How long resolvers may cache a DNS answer: short, since answers follow health. */
export const DEFAULT_DNS_TTL_S = 5

export class ConfigError extends Error {
  override name = 'ConfigError'
}

type Raw = string | undefined

interface OptionSpec<K extends keyof AgentConfig> {
  key: K
  env: string
  flag: string
  default: string
  description: string
  parse: (raw: Raw, name: string) => AgentConfig[K]
}

function option<K extends keyof AgentConfig>(spec: OptionSpec<K>): OptionSpec<K> {
  return spec
}

const optional = (raw: Raw) => (raw === undefined || raw === '' ? undefined : raw)
const list = (raw: Raw) =>
  (raw ?? '')
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean)

function integer(min: number, max: number, fallback: number) {
  return (raw: Raw, name: string): number => {
    if (raw === undefined || raw === '') return fallback
    const n = Number(raw)
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`)
    }
    return n
  }
}

function boolean(fallback: boolean) {
  return (raw: Raw, name: string): boolean => {
    if (raw === undefined || raw === '') return fallback
    if (/^(1|true|on|yes)$/i.test(raw)) return true
    if (/^(0|false|off|no)$/i.test(raw)) return false
    throw new ConfigError(`${name} must be true or false, got "${raw}"`)
  }
}

/** Splits `host:port`, `[v6]:port` or `:port`; the port must be 0–65535. */
export function parseHostPort(raw: string, name: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(raw.trim())
  const port = Number(match?.[3])
  if (!match || !Number.isInteger(port) || port > 65535) {
    throw new ConfigError(`${name} must be host:port (e.g. 127.0.0.1:11337), got "${raw}"`)
  }
  return { host: match[1] ?? (match[2] || '127.0.0.1'), port }
}

const DAY_MS = 24 * 60 * 60 * 1000
const MIB = 1024 * 1024

export const OPTIONS = [
  option({
    key: 'nodeId',
    env: 'OB_NODE_ID',
    flag: '--node-id',
    default: 'generated once, kept in the data dir',
    description: 'Unique id of this node (letters, digits, . _ ~ : -).',
    parse: (raw, name) => {
      const id = optional(raw)
      if (id !== undefined && !isIdentifier(id)) {
        throw new ConfigError(`${name} must be 1-128 letters, digits, '.', '_', '~', ':' or '-', got "${id}"`)
      }
      return id
    },
  }),
  option({
    key: 'selfUrl',
    env: 'OB_SELF_URL',
    flag: '--self-url',
    default: 'http://(hostname):(http port)',
    description: 'URL of this node that every other node can reach.',
    parse: (raw, name) => {
      const url = optional(raw)
      if (url !== undefined && !URL.canParse(url))
        throw new ConfigError(`${name} must be an absolute URL, got "${url}"`)
      return url
    },
  }),
  option({
    key: 'httpAddr',
    env: 'OB_HTTP_ADDR',
    flag: '--http-addr',
    default: '127.0.0.1:11337',
    description: 'Address of the local HTTP API.',
    parse: (raw, name) => parseHostPort(optional(raw) ?? '127.0.0.1:11337', name),
  }),
  option({
    key: 'p2pListen',
    env: 'OB_P2P_LISTEN',
    flag: '--p2p-listen',
    default: '/ip4/0.0.0.0/tcp/11338',
    description:
      'libp2p listen multiaddrs, comma-separated. SWIM datagrams use UDP on the same port numbers.',
    parse: (raw) => (optional(raw) === undefined ? ['/ip4/0.0.0.0/tcp/11338'] : list(raw)),
  }),
  option({
    key: 'peers',
    env: 'OB_PEERS',
    flag: '--peers',
    default: 'none',
    description: 'Seed peers, comma-separated: multiaddrs (with or without /p2p/<id>) or host:port.',
    parse: (raw) => list(raw),
  }),
  option({
    key: 'dataDir',
    env: 'OB_DATA_DIR',
    flag: '--data-dir',
    default: '~/.p2p-registry',
    description: 'Directory for LevelDB, the node id and the libp2p key.',
    parse: (raw) => {
      const dir = optional(raw) ?? '~/.p2p-registry'
      return dir === '~' || dir.startsWith('~/') ? join(homedir(), dir.slice(1)) : dir
    },
  }),
  option({
    key: 'clusterKey',
    env: 'OB_CLUSTER_KEY',
    flag: '--cluster-key',
    default: 'none (open cluster)',
    description: 'Shared secret: only peers with the same key can connect.',
    parse: (raw) => optional(raw),
  }),
  option({
    key: 'apiToken',
    env: 'OB_API_TOKEN',
    flag: '--api-token',
    default: 'none',
    description: 'When set, mutating HTTP requests need `Authorization: Bearer <token>`.',
    parse: (raw) => optional(raw),
  }),
  option({
    key: 'heartbeatIntervalMs',
    env: 'OB_HEARTBEAT_MS',
    flag: '--heartbeat-ms',
    default: String(DEFAULT_HEARTBEAT_INTERVAL_MS),
    description:
      'Milliseconds between node heartbeats; a node is flagged unreachable after several missed beats.',
    parse: integer(100, 3_600_000, DEFAULT_HEARTBEAT_INTERVAL_MS),
  }),
  option({
    key: 'mdns',
    env: 'OB_MDNS',
    flag: '--mdns',
    default: 'true',
    description: 'Discover peers on the LAN with mDNS.',
    parse: boolean(true),
  }),
  option({
    key: 'maxDriftMs',
    env: 'OB_MAX_DRIFT_MS',
    flag: '--max-drift-ms',
    default: String(DEFAULT_MAX_DRIFT_MS),
    description: 'Largest clock lead accepted from a peer; changes further ahead are rejected and counted.',
    parse: integer(0, 3_600_000, DEFAULT_MAX_DRIFT_MS),
  }),
  option({
    key: 'tombstoneGraceMs',
    env: 'OB_TOMBSTONE_GRACE_MS',
    flag: '--tombstone-grace-ms',
    default: `${DEFAULT_TOMBSTONE_GRACE_MS} (${DEFAULT_TOMBSTONE_GRACE_MS / DAY_MS} days)`,
    description:
      'How long deletes are remembered; a node away longer drops its replica and pulls a fresh one.',
    parse: integer(1000, 365 * DAY_MS, DEFAULT_TOMBSTONE_GRACE_MS),
  }),
  option({
    key: 'bodyLimitBytes',
    env: 'OB_BODY_LIMIT_BYTES',
    flag: '--body-limit-bytes',
    default: `${DEFAULT_BODY_LIMIT_BYTES} (${DEFAULT_BODY_LIMIT_BYTES / MIB} MiB)`,
    description: 'Largest HTTP request body.',
    parse: integer(1024, 64 * MIB, DEFAULT_BODY_LIMIT_BYTES),
  }),
  option({
    key: 'maxEntities',
    env: 'OB_MAX_ENTITIES',
    flag: '--max-entities',
    default: String(DEFAULT_MAX_ENTITIES),
    description:
      'Most entries (entities and deletes) the replica holds per kind, about 1 KB each; writes past it are refused, from peers too.',
    parse: integer(100, 100_000_000, DEFAULT_MAX_ENTITIES),
  }),
  option({
    key: 'logLevel',
    env: 'OB_LOG_LEVEL',
    flag: '--log-level',
    default: 'info',
    description: 'fatal, error, warn, info, debug, trace or silent.',
    parse: (raw, name) => {
      const level = optional(raw) ?? 'info'
      if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level)) {
        throw new ConfigError(
          `${name} must be one of fatal, error, warn, info, debug, trace, silent, got "${level}"`,
        )
      }
      return level
    },
  }),
  option({
    key: 'availabilityZone',
    env: 'OB_AVAILABILITY_ZONE',
    flag: '--availability-zone',
    default: 'none',
    description: "Availability zone shown in this node's record.",
    parse: (raw) => optional(raw),
  }),
  option({
    key: 'region',
    env: 'OB_REGION',
    flag: '--region',
    default: 'none',
    description: "Region shown in this node's record.",
    parse: (raw) => optional(raw),
  }),
  option({
    key: 'probeIntervalMs',
    env: 'OB_PROBE_INTERVAL_MS',
    flag: '--probe-interval-ms',
    default: String(DEFAULT_PROBE_INTERVAL_MS),
    description: 'How often the agent TCP-probes each instance registered on it (its nodeUrl).',
    parse: integer(100, 3_600_000, DEFAULT_PROBE_INTERVAL_MS),
  }),
  option({
    key: 'probeNetworks',
    env: 'OB_PROBE_NETWORKS',
    flag: '--probe-networks',
    default: 'any',
    description:
      'Networks the agent may probe, comma-separated CIDRs (e.g. 10.0.0.0/8); an instance outside them is marked Error, not probed.',
    parse: (raw, name) => {
      const cidrs = list(raw)
      try {
        new ProbeNetworks(cidrs)
      } catch (err) {
        throw new ConfigError(`${name}: ${(err as Error).message}`)
      }
      return cidrs
    },
  }),
  option({
    key: 'defaultCheck',
    env: 'OB_DEFAULT_CHECK',
    flag: '--default-check',
    default: DEFAULT_CHECK_TYPE,
    description: 'Check of an instance registered without one: tcp, http, ttl or none.',
    parse: (raw, name) => {
      const type = optional(raw) ?? DEFAULT_CHECK_TYPE
      if (!(CHECK_TYPES as readonly string[]).includes(type)) {
        throw new ConfigError(`${name} must be one of ${CHECK_TYPES.join(', ')}, got "${type}"`)
      }
      return type as CheckType
    },
  }),
  option({
    key: 'deregisterAfterMs',
    env: 'OB_DEREGISTER_AFTER_MS',
    flag: '--deregister-after-ms',
    default: `${DEFAULT_DEREGISTER_AFTER_MS} (30 minutes)`,
    description:
      'The owner deletes an instance that has been Unreachable or Error this long without a break, unless its check says otherwise; 0 never.',
    parse: integer(0, MAX_DEREGISTER_AFTER_MS, DEFAULT_DEREGISTER_AFTER_MS),
  }),
  option({
    key: 'nodeReapAfterMs',
    env: 'OB_NODE_REAP_AFTER_MS',
    flag: '--node-reap-after-ms',
    default: `${DEFAULT_NODE_REAP_AFTER_MS} (1 hour)`,
    description:
      'Delete the instances (orphans) and the record of a node unreachable this long; it re-asserts its record if it returns. 0 never.',
    parse: integer(0, 365 * DAY_MS, DEFAULT_NODE_REAP_AFTER_MS),
  }),
  option({
    key: 'selfPreservationRatio',
    env: 'OB_SELF_PRESERVATION_RATIO',
    flag: '--self-preservation-ratio',
    default: String(DEFAULT_SELF_PRESERVATION_RATIO),
    description:
      'When more than this share of known nodes is unreachable, this agent assumes it is the one cut off and deletes nothing of other nodes (0-1).',
    parse: (raw, name) => {
      if (raw === undefined || raw === '') return DEFAULT_SELF_PRESERVATION_RATIO
      const ratio = Number(raw)
      if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
        throw new ConfigError(`${name} must be a number from 0 to 1, got "${raw}"`)
      }
      return ratio
    },
  }),
  option({
    key: 'apiTokensFile',
    env: 'OB_API_TOKENS_FILE',
    flag: '--api-tokens-file',
    default: 'none',
    description:
      'YAML or JSON list of tokens with roles: admin, service (with its slug), reader; reloaded on SIGHUP and on change.',
    parse: (raw) => optional(raw),
  }),
  option({
    key: 'readsNeedToken',
    env: 'OB_READS_NEED_TOKEN',
    flag: '--reads-need-token',
    default: 'false',
    description: 'Reads need a token too (any role).',
    parse: boolean(false),
  }),
  option({
    key: 'maxWatchers',
    env: 'OB_MAX_WATCHERS',
    flag: '--max-watchers',
    default: String(DEFAULT_MAX_WATCHERS),
    description:
      'Watch streams and blocking queries held open at once; one more is answered 503. Each holds a connection.',
    parse: integer(0, 1_000_000, DEFAULT_MAX_WATCHERS),
  }),
  option({
    key: 'dnsAddr',
    env: 'OB_DNS_ADDR',
    flag: '--dns-addr',
    default: '127.0.0.1:8600',
    description: 'Address of the DNS server (UDP and TCP), or off.',
    parse: (raw, name) => {
      const value = optional(raw) ?? '127.0.0.1:8600'
      return value === 'off' ? undefined : parseHostPort(value, name)
    },
  }),
  option({
    key: 'dnsDomain',
    env: 'OB_DNS_DOMAIN',
    flag: '--dns-domain',
    default: 'p2p',
    description: 'The DNS domain answered: <slug>.service.<domain>, <node-id>.node.<domain>.',
    parse: (raw, name) => {
      const domain = (optional(raw) ?? 'p2p').toLowerCase().replace(/\.$/, '')
      if (!isDomain(domain)) {
        throw new ConfigError(
          `${name} must be a domain name (labels of letters, digits and hyphens), got "${raw}"`,
        )
      }
      return domain
    },
  }),
  option({
    key: 'dnsTtlS',
    env: 'OB_DNS_TTL_S',
    flag: '--dns-ttl-s',
    default: String(DEFAULT_DNS_TTL_S),
    description: 'TTL of DNS answers, seconds (0: resolvers do not cache them).',
    parse: integer(0, 86_400, DEFAULT_DNS_TTL_S),
  }),
] as const

/**
 * Builds the config from flags (already parsed, keyed by AgentConfig key) over environment variables.
 * Throws `ConfigError` naming the flag or variable at fault.
 */
export function loadConfig(
  flags: Partial<Record<keyof AgentConfig, string>>,
  env: NodeJS.ProcessEnv,
): AgentConfig {
  const config: Record<string, unknown> = {}
  for (const spec of OPTIONS) {
    const fromFlag = flags[spec.key]
    const name = fromFlag !== undefined ? spec.flag : spec.env
    config[spec.key] = spec.parse(fromFlag ?? env[spec.env], name)
  }
  return config as unknown as AgentConfig
}

/** The URL a node uses when OB_SELF_URL is not set. */
export function defaultSelfUrl(config: AgentConfig): string {
  return `http://${hostname()}:${config.httpAddr.port}`
}
