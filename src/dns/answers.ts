import { isIP } from 'node:net'
import type { Answer } from 'dns-packet'
import type { Instance } from '../model/index.ts'
import { type DnsName, parseName } from './names.ts'

/** What the answers are read from: the HTTP API's read model (instances as answered, node records). */
export interface DnsSource {
  instances(filter: { slug: string; tag?: string }): readonly Instance[]
  node(id: string): { id: string; url: string } | undefined
  instance(id: string): Instance | undefined
  /** Bumped whenever an answer may have changed; cached answers are kept while it stays. */
  readonly instancesIndex: number
}

export type Rcode = 'NOERROR' | 'NXDOMAIN' | 'REFUSED'

/** The records of one answer, before shuffling and encoding. */
export interface Resolution {
  rcode: Rcode
  answers: Answer[]
  additionals: Answer[]
  /** The zone's SOA with NXDOMAIN and with no answers (RFC 2308: how long to cache the absence). */
  authorities: Answer[]
  /** Whether `answers` may be shuffled (instances: each query gets them in another order). */
  shuffle: boolean
}

export interface DnsAnswersInit {
  domain: string
  ttlS: number
}

/** Answers remembered per name and type; beyond it the oldest are forgotten (random names cost nothing). */
const MAX_CACHED = 4096

/** Only instances not known to be down are answered (DESIGN.md §7.4). */
const UP: ReadonlySet<string> = new Set(['Healthy', 'Degraded'])

/**
 * Resolves a question to records, from the read model. Resolutions are cached per (name, type) until
 * the read model's index moves, so a hot name costs a map lookup, whatever the registry's size.
 */
export class DnsAnswers {
  readonly #source: DnsSource
  readonly #domain: string
  readonly #ttl: number
  readonly #cache = new Map<string, Resolution>()
  #cachedAt = -1

  constructor(init: DnsAnswersInit, source: DnsSource) {
    this.#source = source
    this.#domain = init.domain
    this.#ttl = init.ttlS
  }

  resolve(name: string, type: string): Resolution {
    if (this.#cachedAt !== this.#source.instancesIndex) {
      this.#cache.clear()
      this.#cachedAt = this.#source.instancesIndex
    }
    const key = `${type} ${name}`
    let resolution = this.#cache.get(key)
    if (resolution === undefined) {
      resolution = this.#resolve(name, type, parseName(name, this.#domain))
      this.#cache.set(key, resolution)
      if (this.#cache.size > MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value!)
    }
    return resolution
  }

  #resolve(name: string, type: string, parsed: DnsName): Resolution {
    switch (parsed.kind) {
      case 'outside':
        return { rcode: 'REFUSED', answers: [], additionals: [], authorities: [], shuffle: false }
      case 'apex':
        return type === 'SOA' ? this.#records([this.#soa()]) : this.#noData()
      case 'unknown':
        return this.#nxDomain()
      case 'node': {
        const node = this.#found(parsed.id, (id) => this.#source.node(id))
        if (node === undefined) return this.#nxDomain()
        return this.#records(this.#addressRecords(name, type, hostOf(node.url)))
      }
      case 'instance': {
        const instance = this.#found(parsed.id, (id) => this.#source.instance(id))
        if (instance === undefined) return this.#nxDomain()
        return this.#records(this.#addressRecords(name, type, addressOf(instance)))
      }
      case 'service':
        return this.#service(name, type, parsed.slug, parsed.tag)
    }
  }

  #service(name: string, type: string, slug: string, tag: string | undefined): Resolution {
    const all = this.#found(slug, (s) => {
      const found = this.#source.instances({ slug: s, ...(tag === undefined ? {} : { tag }) })
      return found.length > 0 ? found : undefined
    })
    if (all === undefined) return this.#nxDomain()
    // Healthy and Degraded; Unknown ones too when none is Healthy (a new service, checks not run yet).
    const up = all.filter((i) => UP.has(i.status))
    const answered = up.some((i) => i.status === 'Healthy')
      ? up
      : all.filter((i) => i.status !== 'Unreachable' && i.status !== 'Error')
    if (type === 'SRV') {
      const answers: Answer[] = []
      const additionals: Answer[] = []
      for (const instance of answered) {
        const port = instance.port ?? DEFAULT_PORTS[instance.scheme]
        if (port === undefined) continue
        const address = addressOf(instance)
        const target = isIP(address) ? `${instance.id}.instance.${this.#domain}` : address
        answers.push({ type: 'SRV', name, ttl: this.#ttl, data: { priority: 1, weight: 1, port, target } })
        additionals.push(...this.#addressRecords(target, 'ANY', address))
      }
      return { ...this.#records(answers), additionals, shuffle: true }
    }
    const answers = answered.flatMap((instance) => this.#addressRecords(name, type, addressOf(instance)))
    return { ...this.#records(answers), shuffle: true }
  }

  /** A and AAAA records of an address for a question of `type` (ANY: both); a host name: none. */
  #addressRecords(name: string, type: string, address: string): Answer[] {
    const family = isIP(address)
    if (family === 4 && (type === 'A' || type === 'ANY'))
      return [{ type: 'A', name, ttl: this.#ttl, data: address }]
    if (family === 6 && (type === 'AAAA' || type === 'ANY'))
      return [{ type: 'AAAA', name, ttl: this.#ttl, data: address }]
    return []
  }

  /** Looks a label up as sent, then in lower case (DNS names are case-insensitive). */
  #found<T>(label: string, find: (label: string) => T | undefined): T | undefined {
    const lower = label.toLowerCase()
    return find(label) ?? (lower === label ? undefined : find(lower))
  }

  #records(answers: Answer[]): Resolution {
    return answers.length === 0
      ? this.#noData()
      : { rcode: 'NOERROR', answers, additionals: [], authorities: [], shuffle: false }
  }

  #noData(): Resolution {
    return { rcode: 'NOERROR', answers: [], additionals: [], authorities: [this.#soa()], shuffle: false }
  }

  #nxDomain(): Resolution {
    return { rcode: 'NXDOMAIN', answers: [], additionals: [], authorities: [this.#soa()], shuffle: false }
  }

  #soa(): Answer {
    return {
      type: 'SOA',
      name: this.#domain,
      ttl: this.#ttl,
      data: {
        mname: `ns.${this.#domain}`,
        rname: `hostmaster.${this.#domain}`,
        // The index of this agent's answers: it moves when they change (agents do not share it).
        serial: this.#source.instancesIndex >>> 0,
        refresh: 3600,
        retry: 600,
        expire: 86_400,
        minimum: this.#ttl,
      },
    }
  }
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 }

/** The instance's address: its IP when it has one, else its host (a name). */
function addressOf(instance: Instance): string {
  return instance.ip ?? instance.host ?? hostOf(instance.url)
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname.replace(/^\[(.*)\]$/, '$1')
  } catch {
    return ''
  }
}
