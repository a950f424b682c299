import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  INSTANCE_STATUSES,
  type Instance,
  instanceFromRegistration,
  instanceIdForUrl,
  parseInstance,
} from '../../src/model/index.ts'
import { expectExactly, expectFieldError } from './helpers.ts'

const now = new Date('2026-11-27T12:00:00.123Z')
const register = (req: unknown, nodeUrl?: string) =>
  instanceFromRegistration(req, nodeUrl === undefined ? { now } : { now, nodeUrl })

describe('instanceFromRegistration: address from url', () => {
  it('derives scheme, host, port and path and fills the defaults', () => {
    const req = {
      slug: 'user-svc',
      url: 'https://api.example.com:8443/v1',
      deploymentId: 'depl_1',
      tags: ['a', 'b'],
    }
    expectExactly(register(req, 'http://node-1:11337'), {
      id: instanceIdForUrl('https://api.example.com:8443/v1'),
      url: 'https://api.example.com:8443/v1',
      scheme: 'https',
      host: 'api.example.com',
      port: 8443,
      path: '/v1',
      slug: 'user-svc',
      deploymentId: 'depl_1',
      nodeUrl: 'http://node-1:11337',
      tags: ['a', 'b'],
      status: 'Unknown',
      lastHeartbeat: '2026-11-27T12:00:00.123Z',
    })
  })

  it('omits a default port and a lone / path, and uses ip for IP literals', () => {
    const i = register({ slug: 's', url: 'http://127.1.2.3/' })
    expect(i).toMatchObject({ url: 'http://127.1.2.3/', scheme: 'http', ip: '127.1.2.3' })
    expect(i).not.toHaveProperty('host')
    expect(i).not.toHaveProperty('port')
    expect(i).not.toHaveProperty('path')
  })

  it.each([
    ['grpc://orders:50051', { scheme: 'grpc', host: 'orders', port: 50051 }],
    ['tcp://127.0.0.7:5432', { scheme: 'tcp', ip: '127.0.0.7', port: 5432 }],
    ['http://[2001:db8::1]:8080/api', { scheme: 'http', ip: '2001:db8::1', port: 8080, path: '/api' }],
  ])('accepts any scheme: %s', (url, parts) => {
    expect(register({ slug: 's', url })).toMatchObject({ url, ...parts })
  })

  it('keeps parts given alongside the url when they agree with it', () => {
    const i = register({ slug: 's', url: 'http://web/x', scheme: 'http', host: 'web', port: 80, path: 'x' })
    expect(i).toMatchObject({ url: 'http://web/x', scheme: 'http', host: 'web', port: 80, path: '/x' })
  })

  it.each([
    ['scheme', { scheme: 'https' }],
    ['host', { host: 'other' }],
    ['port', { port: 81 }],
    ['path', { path: '/y' }],
  ])('rejects a %s that contradicts the url', (name, part) => {
    expectFieldError(
      () => register({ slug: 's', url: 'http://web/x', ...part }),
      `instance.${name}`,
      `instance.${name} does not match instance.url`,
    )
  })
})

describe('instanceFromRegistration: ip next to a url', () => {
  it('keeps an ip given next to a host name as extra information', () => {
    const i = register({ slug: 's', url: 'http://web:8080', ip: '127.0.0.5' })
    expect(i).toMatchObject({ host: 'web', ip: '127.0.0.5', port: 8080 })
  })

  it('requires it to match a url whose host is an IP literal', () => {
    expect(register({ slug: 's', url: 'http://[::1]:80', ip: '0:0::1' }).ip).toBe('0:0::1')
    expectFieldError(
      () => register({ slug: 's', url: 'http://127.0.0.1:80', ip: '127.0.0.2' }),
      'instance.ip',
      'instance.ip does not match instance.url',
    )
  })
})

describe('instanceFromRegistration: url built from parts', () => {
  it.each([
    [{ scheme: 'http', host: 'web', port: 8080 }, 'http://web:8080'],
    [{ scheme: 'https', host: 'web', port: 443, path: 'api/v1' }, 'https://web:443/api/v1'],
    [{ scheme: 'grpc', host: 'web', port: 9000, path: '/' }, 'grpc://web:9000'],
    [{ scheme: 'HTTP', ip: '127.168.1.2', port: 80, path: '/x' }, 'http://127.168.1.2:80/x'],
    [{ scheme: 'http', ip: '::1', port: 8080, path: '/health' }, 'http://[::1]:8080/health'],
    [{ scheme: 'http', ip: 'fe80::1:2', port: 1 }, 'http://[fe80::1:2]:1'],
    [{ scheme: 'http', host: 'web', ip: '127.0.0.2', port: 80 }, 'http://web:80'],
  ])('%j → %s', (parts, url) => {
    const i = register({ slug: 's', ...parts })
    expect(i.url).toBe(url)
    expect(i.id).toBe(instanceIdForUrl(url))
    expect(i.scheme).toBe(parts.scheme.toLowerCase())
    expect(i.port).toBe(parts.port)
    if ('path' in parts && parts.path !== '/') expect(i.path).toBe(`/${parts.path.replace(/^\//, '')}`)
    else expect(i).not.toHaveProperty('path')
  })
})

describe('instance ids', () => {
  it('is the same for spellings of one URL', () => {
    const id = instanceIdForUrl('http://a')
    for (const url of ['http://a:80', 'http://A/', 'HTTP://a:80/', 'http://a/#frag'])
      expect(instanceIdForUrl(url)).toBe(id)
    expect(id).toMatch(/^inst_[0-9a-f]{16}$/)
    expect(instanceIdForUrl('grpc://[0:0::1]:5')).toBe(instanceIdForUrl('grpc://[::1]:5'))
  })

  it('differs for different URLs', () => {
    const urls = [
      'http://a',
      'https://a',
      'http://a:81',
      'http://a/x',
      'http://a/x/',
      'http://b',
      'http://a/?q=1',
    ]
    expect(new Set(urls.map(instanceIdForUrl)).size).toBe(urls.length)
  })

  it('makes registration idempotent: same URL by url or by parts, same id', () => {
    const a = register({ slug: 's', url: 'http://web:8080/api' })
    const b = register({ slug: 's', scheme: 'http', host: 'WEB', port: 8080, path: 'api' })
    expect(a.id).toBe(b.id)
  })

  it('keeps an explicit id', () => {
    expect(register({ id: 'inst_mine', slug: 's', url: 'http://a' }).id).toBe('inst_mine')
  })
})

describe('instanceFromRegistration: errors name the field', () => {
  it.each([
    ['no address at all', { slug: 's' }, 'instance.url', 'instance needs url or scheme+host+port'],
    [
      'no host',
      { slug: 's', scheme: 'http', port: 80 },
      'instance.url',
      'instance needs url or scheme+host+port (host missing)',
    ],
    ['no scheme and port', { slug: 's', host: 'a' }, 'instance.url', /\(scheme, port missing\)$/],
    ['relative url', { slug: 's', url: '/api' }, 'instance.url', /^instance\.url must be an absolute URL/],
    [
      'url without host',
      { slug: 's', url: 'mailto:ops@example.com' },
      'instance.url',
      /^instance\.url must be a URL with a host/,
    ],
    ['hostless file url', { slug: 's', url: 'file:///tmp/sock' }, 'instance.url', /with a host/],
    [
      'url with spaces',
      { slug: 's', url: 'http://a b' },
      'instance.url',
      'instance.url must be a URL without whitespace',
    ],
    ['url port 0', { slug: 's', url: 'http://a:0' }, 'instance.url', 'instance.url must have a port 1-65535'],
    ['slug with slash', { slug: 'a/b', url: 'http://a' }, 'instance.slug', /identifier rule/],
    ['id with control char', { id: 'a\tb', slug: 's', url: 'http://a' }, 'instance.id', /identifier rule/],
    [
      'id of 129 chars',
      { id: 'i'.repeat(129), slug: 's', url: 'http://a' },
      'instance.id',
      /identifier rule/,
    ],
    ['empty id', { id: '', slug: 's', url: 'http://a' }, 'instance.id', /identifier rule/],
    [
      'port 0',
      { slug: 's', scheme: 'http', host: 'a', port: 0 },
      'instance.port',
      'instance.port must be an integer 1-65535',
    ],
    [
      'port 70000',
      { slug: 's', scheme: 'http', host: 'a', port: 70000 },
      'instance.port',
      'instance.port must be an integer 1-65535',
    ],
    [
      'port "80"',
      { slug: 's', scheme: 'http', host: 'a', port: '80' },
      'instance.port',
      'instance.port must be an integer 1-65535',
    ],
    [
      'host with a path',
      { slug: 's', scheme: 'http', host: 'a/b', port: 1 },
      'instance.host',
      /must be a host name/,
    ],
    [
      'host with a port',
      { slug: 's', scheme: 'http', host: 'a:1', port: 1 },
      'instance.host',
      /must be a host name/,
    ],
    [
      'bad ip',
      { slug: 's', scheme: 'http', ip: '127.0.0.300', port: 1 },
      'instance.ip',
      'instance.ip must be an IPv4 or IPv6 address',
    ],
    [
      'bad scheme',
      { slug: 's', scheme: 'ht tp', host: 'a', port: 1 },
      'instance.scheme',
      /must be a URL scheme/,
    ],
    [
      'path with query',
      { slug: 's', scheme: 'http', host: 'a', port: 1, path: '/x?y' },
      'instance.path',
      /must be a URL path/,
    ],
    [
      'unknown field',
      { slug: 's', url: 'http://a', status: 'Healthy' },
      'instance.status',
      'instance has unknown field "status"',
    ],
    [
      'tags not strings',
      { slug: 's', url: 'http://a', tags: ['a', 1] },
      'instance.tags[1]',
      'instance.tags[1] must be a string',
    ],
    ['bad nodeUrl', { slug: 's', url: 'http://a', nodeUrl: 'node-1' }, 'instance.nodeUrl', /absolute URL/],
    ['not an object', [], 'instance', 'instance must be an object'],
  ])('%s', (_, req, field, message) => {
    expectFieldError(() => register(req), field, message)
  })
})

describe('parseInstance', () => {
  const stored: Instance = register({ slug: 'svc', url: 'http://web:8080' })

  it('accepts a stored record in any key order and returns it in schema order', () => {
    const shuffled = Object.fromEntries(Object.entries(stored).reverse())
    expectExactly(parseInstance(shuffled), stored)
  })

  it('keeps fields a newer agent added, after the known ones in sorted order, whatever order they came in', () => {
    const newer = JSON.parse(JSON.stringify({ zeta: 1, ...stored, weight: { share: 3 }, __proto__x: true }))
    const parsed = parseInstance(Object.fromEntries(Object.entries(newer).reverse()))
    expect(Object.keys(parsed)).toEqual([...Object.keys(stored), '__proto__x', 'weight', 'zeta'])
    expect(parsed.weight).toEqual({ share: 3 })
    expect(JSON.stringify(parseInstance(parsed))).toBe(JSON.stringify(parsed))
  })

  it('accepts every status and a Go-style timestamp', () => {
    for (const status of INSTANCE_STATUSES) expect(parseInstance({ ...stored, status }).status).toBe(status)
    const goTime = '2026-11-27T12:00:00.123456789Z'
    expect(parseInstance({ ...stored, lastHeartbeat: goTime }).lastHeartbeat).toBe(goTime)
  })

  it.each([
    [
      'bad status',
      { status: 'Up' },
      'instance.status',
      'instance.status must be one of Unknown, Healthy, Degraded, Unreachable, Error',
    ],
    ['missing status', { status: undefined }, 'instance.status', 'instance.status is required'],
    ['missing url', { url: undefined }, 'instance.url', 'instance.url is required'],
    ['relative url', { url: 'web:8080' }, 'instance.url', /with a host/],
    [
      'host contradicting url',
      { host: 'other' },
      'instance.host',
      'instance.host does not match instance.url',
    ],
    [
      'local-time timestamp',
      { lastHeartbeat: '2026-11-27T12:00:00+01:00' },
      'instance.lastHeartbeat',
      /RFC 3339 UTC/,
    ],
    ['impossible date', { lastHeartbeat: '2026-13-01T00:00:00Z' }, 'instance.lastHeartbeat', /real date/],
  ])('rejects %s', (_, change, field, message) => {
    const value = JSON.parse(JSON.stringify({ ...stored, ...change }))
    expectFieldError(() => parseInstance(value), field, message)
  })
})

const port = fc.integer({ min: 1, max: 65_535 })
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/).filter((l) => !/^\d+$/.test(l))
// Only names the WHATWG URL parser keeps as host names ("a.1" or "0x1f" read as IPv4 and are rejected).
const hostname = fc
  .array(label, { minLength: 1, maxLength: 3 })
  .chain((labels) => fc.boolean().map((upper) => (upper ? labels.join('.').toUpperCase() : labels.join('.'))))
  .filter((h) => URL.parse(`http://${h}:1`)?.hostname === h.toLowerCase())
const path = fc
  .tuple(fc.array(fc.stringMatching(/^[A-Za-z0-9._~%!$&'()*+,;=@-]{1,8}$/), { maxLength: 3 }), fc.boolean())
  .map(([segments, slash]) => (slash ? '/' : '') + segments.join('/'))
const where = fc.oneof(
  hostname.map((host) => ({ host })),
  fc.ipV4().map((ip) => ({ ip })),
  fc.ipV6().map((ip) => ({ ip })),
  fc.tuple(hostname, fc.ipV4()).map(([host, ip]) => ({ host, ip })),
)
const parts = fc
  .record({
    scheme: fc.constantFrom('http', 'https', 'grpc', 'tcp', 'ws', 'HTTP'),
    where,
    port,
    path: fc.option(path, { nil: undefined }),
  })
  .map(({ where: w, path: p, ...rest }) => ({ ...rest, ...w, ...(p === undefined ? {} : { path: p }) }))
const optional = fc.record(
  {
    id: fc.stringMatching(/^[A-Za-z0-9._~:-]{1,20}$/),
    deploymentId: fc.string({ minLength: 1, maxLength: 10 }),
    nodeUrl: fc.webUrl(),
    tags: fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }),
  },
  { requiredKeys: [] },
)
/** Valid registrations: by parts, or by the url those parts make (optionally with some parts repeated). */
const registration = fc
  .tuple(
    parts,
    optional,
    fc.stringMatching(/^[A-Za-z0-9._~:-]{1,20}$/),
    fc.constantFrom('parts', 'url', 'both'),
  )
  .map(([p, more, slug, style]) => {
    const byParts = { slug, ...more, ...p }
    if (style === 'parts') return byParts
    const url = instanceFromRegistration(byParts, { now }).url
    return style === 'url' ? { slug, ...more, url } : { ...byParts, url }
  })

describe('instance properties', () => {
  it('registration output passes parseInstance, and parsing is a fixed point', () => {
    fc.assert(
      fc.property(
        registration,
        fc.date({ noInvalidDate: true, min: new Date(0), max: new Date('9999-12-31T23:59:59.999Z') }),
        (req, at) => {
          const out = instanceFromRegistration(req, { now: at, nodeUrl: 'http://node:11337' })
          const once = parseInstance(out)
          expectExactly(once, out)
          expectExactly(parseInstance(JSON.parse(JSON.stringify(once))), once)
        },
      ),
      { numRuns: 1000 },
    )
  })

  it('the same address gives the same id however it is registered', () => {
    fc.assert(
      fc.property(parts, (p) => {
        const byParts = instanceFromRegistration({ slug: 's', ...p }, { now })
        const byUrl = instanceFromRegistration({ slug: 's', url: byParts.url }, { now })
        expect(byUrl.id).toBe(byParts.id)
      }),
      { numRuns: 300 },
    )
  })
})
