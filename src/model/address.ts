import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import { invalid } from './errors.ts'

// An instance's address exists in two spellings: a full `url`, or `scheme` + (`host` | `ip`) + `port`
// [+ `path`] (1Backend's "URL alternative fields"). These helpers convert between them and check that
// the two agree, using WHATWG URL parsing throughout so that both sides are normalised the same way.

export interface AddressParts {
  scheme?: string | undefined
  host?: string | undefined
  ip?: string | undefined
  port?: number | undefined
  path?: string | undefined
}

/** Ports that WHATWG URL drops from `url.port` because they are the default of a special scheme. */
const DEFAULT_PORTS: Readonly<Record<string, number>> = {
  'http:': 80,
  'https:': 443,
  'ws:': 80,
  'wss:': 443,
  'ftp:': 21,
}

/** Parses an absolute URL that has a scheme and a host (any scheme: http, grpc, tcp, …). */
export function parseAbsoluteUrl(value: string, field: string): URL {
  const u = URL.parse(value)
  if (u === null) throw invalid(field, 'must be an absolute URL like http://host:8080/path')
  if (u.hostname === '') throw invalid(field, 'must be a URL with a host, like grpc://host:9000')
  return u
}

/** The parts a URL implies. `port` only when explicit in the URL; `path` omitted when empty or `/`. */
export function addressFromUrl(u: URL, field: string): AddressParts & { scheme: string } {
  const hostname = unbracket(u.hostname)
  const port = u.port === '' ? undefined : Number(u.port)
  if (port === 0) throw invalid(field, 'must have a port 1-65535')
  return {
    scheme: u.protocol.slice(0, -1),
    ...(isIP(hostname) === 0 ? { host: hostname } : { ip: hostname }),
    port,
    path: normalisePath(u.pathname),
  }
}

/** `scheme://host:port/path`; IPv6 literals go in brackets. `path` must already be normalised. */
export function buildUrl(scheme: string, hostOrIp: string, port: number, path: string | undefined): string {
  return `${scheme}://${bracket(hostOrIp)}:${port}${path ?? ''}`
}

/** Leading `/` added; `''` and `/` mean "no path" so `http://a` and `http://a/` register alike. */
export function normalisePath(path: string | undefined): string | undefined {
  if (path === undefined || path === '' || path === '/') return undefined
  return path.startsWith('/') ? path : `/${path}`
}

/**
 * Throws unless every given part names the same address as `u`. Hosts compare case-insensitively
 * after URL normalisation (IPv6 compression, punycode); a port given for a URL without one must be
 * the scheme's default port. `ip` is compared only when the URL's host is an IP literal and no `host`
 * is given; next to a host name it is extra information (the address the name resolves to), as in
 * 1Backend, where a URL built from parts uses the host when both are set.
 */
export function assertAddressAgrees(u: URL, parts: AddressParts, field: string): void {
  const mismatch = (name: string) => invalid(`${field}.${name}`, `does not match ${field}.url`)
  if (parts.scheme !== undefined && `${parts.scheme.toLowerCase()}:` !== u.protocol) throw mismatch('scheme')
  const hostname = u.hostname.toLowerCase()
  if (parts.host !== undefined && canonicalHost(u, parts.host) !== hostname) throw mismatch('host')
  if (parts.ip !== undefined && parts.host === undefined && isIP(unbracket(hostname)) !== 0) {
    if (canonicalHost(u, parts.ip) !== hostname) throw mismatch('ip')
  }
  if (parts.port !== undefined && parts.port !== effectivePort(u)) throw mismatch('port')
  if (
    parts.path !== undefined &&
    URL.parse(`${u.protocol}//${u.host}${parts.path}`)?.pathname !== u.pathname
  ) {
    throw mismatch('path')
  }
}

/**
 * A deterministic instance id for a URL, so the same address registered twice (even on two nodes at
 * once) is one instance. The URL is canonicalised first: WHATWG normalisation (case of scheme and
 * host, default port, IPv6 form), no fragment (it never reaches the server), and no lone trailing
 * `/`, so `http://a:80`, `http://a` and `http://A/` share an id. 64 bits of sha256 make an accidental
 * collision negligible at registry sizes.
 */
export function instanceIdForUrl(url: string): string {
  const u = parseAbsoluteUrl(url, 'url')
  u.hash = ''
  let canonical = u.href
  if (u.pathname === '/' && canonical.endsWith('/')) canonical = canonical.slice(0, -1)
  return `inst_${createHash('sha256').update(canonical).digest('hex').slice(0, 16)}`
}

function effectivePort(u: URL): number | undefined {
  return u.port === '' ? DEFAULT_PORTS[u.protocol] : Number(u.port)
}

function canonicalHost(u: URL, host: string): string | undefined {
  return URL.parse(`${u.protocol}//${bracket(host)}`)?.hostname.toLowerCase()
}

function bracket(hostOrIp: string): string {
  return isIP(hostOrIp) === 6 ? `[${hostOrIp}]` : hostOrIp
}

function unbracket(hostname: string): string {
  return hostname.startsWith('[') ? hostname.slice(1, -1) : hostname
}

/** Normalised node URLs by their spelling: a cluster has few, and the replica asks per instance write. */
const normalisedNodeUrls = new Map<string, string>()
const MAX_CACHED_NODE_URLS = 4096

/**
 * The canonical form of a node URL for comparisons: WHATWG normalisation (case of scheme and host,
 * default port dropped), no fragment, no trailing `/`. `http://Node-A:80/` and `http://node-a` match.
 * Memoised (bounded): it runs on every instance merge and lookup by owner.
 */
export function normaliseNodeUrl(url: string): string {
  let normalised = normalisedNodeUrls.get(url)
  if (normalised !== undefined) return normalised
  const u = URL.parse(url.trim())
  if (u === null) normalised = url.trim().replace(/\/+$/, '')
  else {
    u.hash = ''
    normalised = u.href.replace(/\/+$/, '')
  }
  if (normalisedNodeUrls.size >= MAX_CACHED_NODE_URLS) normalisedNodeUrls.clear()
  normalisedNodeUrls.set(url, normalised)
  return normalised
}
