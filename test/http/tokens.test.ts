/**
 * Tokens with roles (OB_API_TOKENS_FILE, DESIGN.md §7.3): each role against each route, a service
 * token kept to its slug, reads behind a token, hashed entries, reloading, and files that cannot be used.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ReloadingTokens, Tokens, TokensFileError } from '../../src/http/index.ts'
import { testLogger } from '../liveness/fixtures.ts'
import { waitFor } from '../support/wait.ts'
import { type CallOptions, putNode, snapshot, startServer, type TestServer } from './fixtures.ts'

const ADMIN = 'admin-token-0123456789'
const ORDERS = 'orders-service-token-0123'
const BILLING = 'billing-service-token-012'
const READER = 'reader-token-0123456789'
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

const FILE = `
- token: ${ADMIN}
  role: admin
- sha256: ${sha256(ORDERS)}
  role: service
  slug: orders
- token: ${BILLING}
  role: service
  slug: billing
- token: ${READER}
  role: reader
`

const as = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

describe('tokens with roles', () => {
  let s: TestServer
  let dir: string
  let tokens: ReloadingTokens
  let ordersInstance: string
  let billingInstance: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'p2p-registry-tokens-'))
    await writeFile(join(dir, 'tokens.yaml'), FILE)
    tokens = await ReloadingTokens.open(undefined, join(dir, 'tokens.yaml'), testLogger())
    s = await startServer({ init: { tokens, readsNeedToken: true } })
    ordersInstance = (
      await s.call('PUT', '/registry-svc/instance', {
        body: { url: 'http://127.0.0.1:7001', slug: 'orders' },
        headers: as(ADMIN),
      })
    ).json.instance.id
    billingInstance = (
      await s.call('PUT', '/registry-svc/instance', {
        body: { url: 'http://127.0.0.1:7002', slug: 'billing' },
        headers: as(ADMIN),
      })
    ).json.instance.id
    await s.call('PUT', '/registry-svc/definition', {
      body: { definition: { id: 'd1', image: { name: 'x' } } },
      headers: as(ADMIN),
    })
    await putNode(s.replica, { id: 'node-z', url: 'http://127.0.0.9:11337' })
  })
  afterAll(async () => {
    tokens.close()
    await s.close()
    await rm(dir, { recursive: true, force: true })
  })

  /** Answers a request as each token gives it, and whether the registry changed. */
  const attempt = async (
    method: string,
    path: string,
    token: string | undefined,
    options: CallOptions = {},
  ) => {
    const before = snapshot(s.replica)
    const answer = await s.call(method, path, { ...options, headers: token ? as(token) : {} })
    return {
      status: answer.status,
      error: answer.json?.error as string | undefined,
      changed: snapshot(s.replica).digest !== before.digest,
    }
  }

  it('refuses each write a role may not make with 403 naming why, and changes nothing', async () => {
    const cases: Array<[string, string, string, CallOptions, RegExp]> = [
      [
        READER,
        'PUT',
        '/registry-svc/instance',
        { body: { url: 'http://127.0.0.1:7003', slug: 'orders' } },
        /^a reader token cannot change the registry$/,
      ],
      [READER, 'DELETE', `/registry-svc/instance/${ordersInstance}`, {}, /reader/],
      [
        ORDERS,
        'PUT',
        '/registry-svc/definition',
        { body: { definition: { id: 'd2', image: { name: 'x' } } } },
        /^the service token of "orders" may only register, renew and remove instances of its slug$/,
      ],
      [ORDERS, 'DELETE', '/registry-svc/definition/d1', {}, /may only register/],
      [
        ORDERS,
        'DELETE',
        `/registry-svc/node/${encodeURIComponent('http://127.0.0.9:11337')}`,
        {},
        /may only register/,
      ],
      [
        ORDERS,
        'PUT',
        '/registry-svc/instance',
        { body: { url: 'http://127.0.0.1:7004', slug: 'billing' } },
        /^the service token of "orders" cannot register an instance of "billing"$/,
      ],
      [
        ORDERS,
        'PUT',
        '/registry-svc/instance',
        { body: { url: 'http://127.0.0.1:7002' } },
        /cannot register over an instance of "billing"/,
      ],
      [
        ORDERS,
        'DELETE',
        `/registry-svc/instance/${billingInstance}`,
        {},
        /^the service token of "orders" cannot remove an instance of "billing"$/,
      ],
      [
        ORDERS,
        'PUT',
        `/registry-svc/instance/${billingInstance}/heartbeat`,
        {},
        /cannot renew an instance of "billing"/,
      ],
    ]
    for (const [token, method, path, options, error] of cases) {
      const what = `${method} ${path} as ${token}`
      const r = await attempt(method, path, token, options)
      expect(r.status, what).toBe(403)
      expect(r.error, what).toMatch(error)
      expect(r.changed, what).toBe(false)
    }
  })

  it('lets a service token register (taking its slug when none is given), renew and remove instances of its slug', async () => {
    const registered = await s.call('PUT', '/registry-svc/instance', {
      body: { url: 'http://127.0.0.1:7005' },
      headers: as(ORDERS),
    })
    expect(registered.status).toBe(201)
    expect(registered.json.instance.slug).toBe('orders')
    const id = registered.json.instance.id as string
    expect((await attempt('PUT', `/registry-svc/instance/${id}/heartbeat`, ORDERS)).status).toBe(204)
    expect((await attempt('DELETE', `/registry-svc/instance/${id}`, ORDERS)).status).toBe(204)
    expect(s.replica.get('instance', id)).toBeUndefined()
  })

  it('lets the admin do everything', async () => {
    expect(
      (
        await attempt('PUT', '/registry-svc/definition', ADMIN, {
          body: { definition: { id: 'd3', image: { name: 'x' } } },
        })
      ).status,
    ).toBe(201)
    expect((await attempt('DELETE', '/registry-svc/definition/d3', ADMIN)).status).toBe(204)
  })

  it('needs a token for reads with OB_READS_NEED_TOKEN (any role), never for /healthz', async () => {
    expect((await attempt('GET', '/registry-svc/instances', undefined)).status).toBe(401)
    expect((await attempt('GET', '/registry-svc/instances', 'not-a-token-at-all')).status).toBe(401)
    for (const token of [ADMIN, ORDERS, READER]) {
      expect((await attempt('GET', '/registry-svc/instances', token)).status).toBe(200)
      expect((await attempt('POST', '/registry-svc/nodes', token, { body: {} })).status).toBe(200)
    }
    expect((await attempt('GET', '/healthz', undefined)).status).toBe(200)
  })

  it('answers 401 for a write without a known token, whatever the role would be', async () => {
    const r = await attempt('PUT', '/registry-svc/instance', undefined, {
      body: { url: 'http://127.0.0.1:7006', slug: 'orders' },
    })
    expect(r).toMatchObject({ status: 401, changed: false })
    expect(r.error).toMatch(/needs an Authorization: Bearer <token> header/)
  })

  it('reloads the file when it is replaced, and keeps the tokens in force when the new one does not parse', async () => {
    const NEW_READER = 'a-reader-added-later-0123'
    const path = join(dir, 'tokens.yaml')
    await writeFile(join(dir, 'next.yaml'), `${FILE}\n- token: ${NEW_READER}\n  role: reader\n`)
    await rename(join(dir, 'next.yaml'), path)
    await waitFor(
      'the new token accepted',
      async () => (await attempt('GET', '/registry-svc/instances', NEW_READER)).status === 200,
    )
    await writeFile(path, '- token: [not yaml')
    expect(await tokens.reload()).toBe(false)
    expect((await attempt('GET', '/registry-svc/instances', NEW_READER)).status).toBe(200)
    await writeFile(path, FILE)
    expect(await tokens.reload()).toBe(true)
    expect((await attempt('GET', '/registry-svc/instances', NEW_READER)).status).toBe(401)
  })
})

describe('a tokens file that cannot be used', () => {
  it.each([
    ['not YAML', '- token: [x', /is not YAML or JSON/],
    ['not a list', 'token: x', /tokens must be an array/],
    [
      'an unknown role',
      '[{"token": "0123456789abcdef", "role": "root"}]',
      /tokens\/0\/role|tokens\.0\.role|role/,
    ],
    [
      'a service without a slug',
      '[{"token": "0123456789abcdef", "role": "service"}]',
      /tokens\[0\] has role service and needs the "slug"/,
    ],
    [
      'a slug on a reader',
      '[{"token": "0123456789abcdef", "role": "reader", "slug": "x"}]',
      /only a service token takes/,
    ],
    [
      'both token and sha256',
      `[{"token": "0123456789abcdef", "sha256": "${'a'.repeat(64)}", "role": "admin"}]`,
      /exactly one of "token" and "sha256"/,
    ],
    ['a short token', '[{"token": "short", "role": "admin"}]', /token/],
    ['a bad hash', '[{"sha256": "xyz", "role": "admin"}]', /sha256/],
  ])('is refused: %s', (_, text, error) => {
    expect(() => Tokens.from(undefined, text, 'tokens.yaml')).toThrow(TokensFileError)
    expect(() => Tokens.from(undefined, text, 'tokens.yaml')).toThrow(error)
  })

  it('stops the agent at start with one line naming the file', async () => {
    await expect(ReloadingTokens.open(undefined, '/nonexistent/tokens.yaml', testLogger())).rejects.toThrow(
      /cannot read OB_API_TOKENS_FILE \/nonexistent\/tokens\.yaml/,
    )
  })
})
