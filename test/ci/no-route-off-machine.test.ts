/**
 * In CI the suite runs inside a network namespace with only loopback (`scripts/isolated`), so nothing
 * a test registers or dials can reach another host. This reads the routing tables (it sends nothing)
 * and fails if any route leads off the machine: only loopback and the namespace clusters' own bridge
 * (198.18.0.0/15, RFC 2544's benchmark range) may be reachable.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const RTF_GATEWAY = 0x2
const RTF_REJECT = 0x200

/** `/proc/net/route` writes addresses as little-endian hex. */
function ipv4(hex: string): number[] {
  return [6, 4, 2, 0].map((i) => Number.parseInt(hex.slice(i, i + 2), 16))
}

function ipv4RoutesOffMachine(table: string): string[] {
  return table
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter(([, dest, gateway, flags, , , , mask]) => {
      const [a, b] = ipv4(dest!)
      const prefix = ipv4(mask!).reduce(
        (bits, octet) => bits + octet.toString(2).replaceAll('0', '').length,
        0,
      )
      const loopback = a === 127 && prefix >= 8
      const namespaceHosts = a === 198 && (b === 18 || b === 19) && prefix >= 15
      const viaGateway = (Number.parseInt(flags!, 16) & RTF_GATEWAY) !== 0 || gateway !== '00000000'
      return viaGateway || !(loopback || namespaceHosts)
    })
    .map((fields) => `${fields[0]} ${ipv4(fields[1]!).join('.')} mask ${ipv4(fields[7]!).join('.')}`)
}

function ipv6RoutesOffMachine(table: string): string[] {
  return table
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([dest, prefix, , , gateway, , , , flags]) => {
      if ((Number.parseInt(flags!, 16) & RTF_REJECT) !== 0) return false
      const bits = Number.parseInt(prefix!, 16)
      const loopback = dest === `${'0'.repeat(31)}1` && bits === 128
      const linkLocal = dest!.startsWith('fe80') && bits >= 10
      const multicast = dest!.startsWith('ff') && bits >= 8
      return gateway !== '0'.repeat(32) || !(loopback || linkLocal || multicast)
    })
    .map((fields) => `${fields[9]} ${fields[0]}/${Number.parseInt(fields[1]!, 16)}`)
}

describe.runIf(process.env.CI)('the CI run', () => {
  it('has no route off this machine', () => {
    expect(ipv4RoutesOffMachine(readFileSync('/proc/net/route', 'utf8'))).toEqual([])
    expect(ipv6RoutesOffMachine(readFileSync('/proc/net/ipv6_route', 'utf8'))).toEqual([])
  })
})

describe('the route check', () => {
  it('sees a default route, a gateway and a private network as leading off the machine', () => {
    const table = [
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
      'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
      'eth0\t000A000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
      'br0\t000012C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
    ].join('\n')
    expect(ipv4RoutesOffMachine(table)).toEqual([
      'eth0 0.0.0.0 mask 0.0.0.0',
      'eth0 10.0.10.0 mask 255.255.255.0',
    ])
    const zero = '0'.repeat(32)
    const v6 = [
      `${zero} 00 ${zero} 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003 eth0`,
      `${zero} 00 ${zero} 00 ${zero} ffffffff 00000001 00000000 00200200 lo`,
      `fe800000000000000000000000000000 40 ${zero} 00 ${zero} 00000100 00000001 00000000 00000001 br0`,
    ].join('\n')
    expect(ipv6RoutesOffMachine(v6)).toEqual([`eth0 ${zero}/0`])
  })
})
