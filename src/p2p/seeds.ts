import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'

export class SeedError extends Error {
  override name = 'SeedError'
}

/** Default libp2p port of an agent, used when a seed is a bare host name. */
export const DEFAULT_P2P_PORT = 11338

/**
 * Checks a seed of OB_PEERS: a multiaddr (`/ip4/10.0.0.2/tcp/11338[/p2p/<id>]`, `/dns4/agent-2/tcp/11338`)
 * or `host:port` (`agent-2:11338`, `10.0.0.2:11338`, `[fd00::2]:11338`). Throws SeedError naming it.
 */
export function checkSeed(seed: string): void {
  if (seed.startsWith('/')) {
    try {
      multiaddr(seed)
    } catch (err) {
      throw new SeedError(`peer "${seed}" is not a valid multiaddr: ${(err as Error).message}`)
    }
    return
  }
  splitHostPort(seed)
}

function splitHostPort(seed: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:/\s]+))(?::(\d+))?$/.exec(seed)
  const port = match?.[3] === undefined ? DEFAULT_P2P_PORT : Number(match[3])
  if (!match || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new SeedError(`peer "${seed}" must be a multiaddr or host:port`)
  }
  return { host: (match[1] ?? match[2])!, port }
}

/**
 * Turns a seed into dialable multiaddrs. Host names are resolved with the system resolver (so compose
 * service names and /etc/hosts work), every time: a seed's address may change between attempts.
 */
export async function resolveSeed(seed: string): Promise<Multiaddr[]> {
  if (seed.startsWith('/')) {
    const addr = multiaddr(seed)
    const [first] = addr.stringTuples()
    const proto = first?.[0]
    // /dns, /dns4, /dns6 (codes 53, 54, 55): resolve here rather than rely on libp2p's resolver.
    if (proto !== 53 && proto !== 54 && proto !== 55) return [addr]
    const host = first![1]!
    const rest = seed.slice(seed.indexOf('/', 1 + seed.indexOf('/', 1)))
    const family = proto === 54 ? 4 : proto === 55 ? 6 : 0
    const found = await lookup(host, { all: true, family })
    return found.map((a) => multiaddr(`/${a.family === 6 ? 'ip6' : 'ip4'}/${a.address}${rest}`))
  }
  const { host, port } = splitHostPort(seed)
  const family = isIP(host)
  const addresses = family === 0 ? await lookup(host, { all: true }) : [{ address: host, family }]
  return addresses.map((a) => multiaddr(`/${a.family === 6 ? 'ip6' : 'ip4'}/${a.address}/tcp/${port}`))
}
