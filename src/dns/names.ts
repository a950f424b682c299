/**
 * The names the agent answers (README, DNS), under its domain (`OB_DNS_DOMAIN`, default `p2p`):
 *
 *   <slug>.service.<domain>          instances of a slug
 *   <tag>.<slug>.service.<domain>    ... with a tag
 *   _<slug>._tcp.service.<domain>    RFC 2782 form (any tag); _<slug>._<tag>.service: with a tag
 *   <node-id>.node.<domain>          a node's address
 *   <instance-id>.instance.<domain>  one instance's address (the target of its SRV record)
 *   <domain>                         the zone apex (SOA)
 */
export type DnsName =
  | { kind: 'service'; slug: string; tag?: string }
  | { kind: 'node'; id: string }
  | { kind: 'instance'; id: string }
  | { kind: 'apex' }
  /** Under the domain, but no name this agent knows the shape of. */
  | { kind: 'unknown' }
  /** Not under the domain: refused (the agent is not a resolver). */
  | { kind: 'outside' }

/**
 * Parses a query name (with or without the final dot) against `domain` (lower case). The domain and the
 * name's kind match in any case; the labels before them are kept as sent (slugs and ids may have
 * capitals; the lookup tries them as sent, then in lower case).
 */
export function parseName(name: string, domain: string): DnsName {
  const trimmed = name.replace(/\.$/, '')
  const lower = trimmed.toLowerCase()
  if (lower === domain) return { kind: 'apex' }
  if (!lower.endsWith(`.${domain}`)) return { kind: 'outside' }
  const labels = trimmed.slice(0, -(domain.length + 1)).split('.')
  const kind = labels.pop()?.toLowerCase()
  if (labels.length === 0 || labels.some((label) => label === '')) return { kind: 'unknown' }
  if (kind === 'node') return { kind: 'node', id: labels.join('.') }
  if (kind === 'instance' && labels.length === 1) return { kind: 'instance', id: labels[0]! }
  if (kind !== 'service' || labels.length > 2) return { kind: 'unknown' }
  const [first, second] = labels as [string, string | undefined]
  if (first.startsWith('_') && second?.startsWith('_')) {
    const slug = first.slice(1)
    const tag = second.slice(1)
    if (slug === '' || tag === '') return { kind: 'unknown' }
    return tag.toLowerCase() === 'tcp' ? { kind: 'service', slug } : { kind: 'service', slug, tag }
  }
  return second === undefined
    ? { kind: 'service', slug: first }
    : { kind: 'service', slug: second, tag: first }
}

/** A domain as configured: lower case, no final dot, each label 1-63 letters, digits or hyphens. */
export function isDomain(domain: string): boolean {
  return /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(
    domain,
  )
}
