import { lookup as dnsLookup } from 'node:dns'
import { BlockList, isIP, type LookupFunction } from 'node:net'

/**
 * The networks an agent may probe (`OB_PROBE_NETWORKS`): CIDRs such as `10.0.0.0/8` or `fd00::/8`.
 * An instance's `nodeUrl` decides which agent probes it, and any member may register an instance, so
 * without this any member could make an agent connect wherever it likes. Empty: anywhere.
 */
export class ProbeNetworks {
  readonly cidrs: readonly string[]
  readonly #list = new BlockList()

  /** @throws Error naming the first entry that is not a CIDR */
  constructor(cidrs: readonly string[]) {
    this.cidrs = cidrs
    for (const cidr of cidrs) {
      const match = /^([^/]+)\/(\d{1,3})$/.exec(cidr)
      const family = match ? isIP(match[1]!) : 0
      const prefix = Number(match?.[2])
      if (!match || family === 0 || prefix > (family === 4 ? 32 : 128)) {
        throw new Error(`"${cidr}" is not a network in CIDR form (e.g. 10.0.0.0/8 or fd00::/8)`)
      }
      this.#list.addSubnet(match[1]!, prefix, family === 4 ? 'ipv4' : 'ipv6')
    }
  }

  /** Whether `ip` (an IP literal) may be probed. */
  allows(ip: string): boolean {
    if (this.cidrs.length === 0) return true
    const family = isIP(ip)
    return family !== 0 && this.#list.check(ip, family === 4 ? 'ipv4' : 'ipv6')
  }

  /** Why `host` may not be probed, or undefined when it may (a name is checked once resolved). */
  refusal(host: string): string | undefined {
    if (isIP(host) === 0 || this.allows(host)) return undefined
    return `not probed: ${host} is outside OB_PROBE_NETWORKS (${this.cidrs.join(', ')})`
  }

  /** `lookup` that keeps only the addresses these networks allow, failing when none is left. */
  filterLookup(lookup: LookupFunction = dnsLookup as LookupFunction): LookupFunction {
    if (this.cidrs.length === 0) return lookup
    return (hostname, options, callback) => {
      lookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return callback(err, '', 0)
        const list = (addresses as unknown as Array<{ address: string; family: number }>).filter((a) =>
          this.allows(a.address),
        )
        if (list.length === 0) {
          return callback(
            new Error(
              `not probed: ${hostname} resolves only outside OB_PROBE_NETWORKS (${this.cidrs.join(', ')})`,
            ),
            '',
            0,
          )
        }
        if ((options as { all?: boolean }).all)
          return (callback as (e: null, a: typeof list) => void)(null, list)
        callback(null, list[0]!.address, list[0]!.family)
      })
    }
  }
}
