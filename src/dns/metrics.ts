import { Counter, Histogram, type Registry } from 'prom-client'
import type { DnsServerComponents, Transport } from './server.ts'

/** Latency buckets, seconds: an answer from memory takes tens of microseconds. */
const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1]

const LABELLED_TYPES: ReadonlySet<string> = new Set([
  'A',
  'AAAA',
  'SRV',
  'ANY',
  'SOA',
  'NS',
  'TXT',
  'PTR',
  'CNAME',
  'MX',
])

/** The DNS server's Prometheus metrics, in the agent's registry (served by `GET /metrics`). */
export function dnsMetrics(registry: Registry): Pick<DnsServerComponents, 'observe' | 'malformed'> {
  const queries = new Counter({
    name: 'p2p_registry_dns_queries_total',
    help: 'DNS queries answered, by question type, response code and transport',
    labelNames: ['qtype', 'rcode', 'transport'],
    registers: [registry],
  })
  const seconds = new Histogram({
    name: 'p2p_registry_dns_query_seconds',
    help: 'Time to answer one DNS query (decode, resolve, encode), by transport',
    labelNames: ['transport'],
    buckets: BUCKETS,
    registers: [registry],
  })
  const malformed = new Counter({
    name: 'p2p_registry_dns_malformed_total',
    help: 'DNS packets dropped because they did not decode as a query, by transport',
    labelNames: ['transport'],
    registers: [registry],
  })
  for (const transport of ['udp', 'tcp'] as const) malformed.inc({ transport }, 0)
  // Label children looked up once: prom-client hashes the labels on every call otherwise, a cost
  // that shows at tens of thousands of queries a second.
  const counted = new Map<string, { inc(): void }>()
  const timed = { udp: seconds.labels('udp'), tcp: seconds.labels('tcp') }
  return {
    observe: (q) => {
      // Any client can ask any of 65,536 types: the label takes the common ones, the rest are `other`.
      const qtype = LABELLED_TYPES.has(q.type) ? q.type : 'other'
      const key = `${qtype} ${q.rcode} ${q.transport}`
      let counter = counted.get(key)
      if (counter === undefined) {
        counter = queries.labels(qtype, q.rcode, q.transport)
        counted.set(key, counter)
      }
      counter.inc()
      timed[q.transport].observe(q.seconds)
    },
    malformed: (transport: Transport) => malformed.inc({ transport }),
  }
}
