/**
 * 1Backend's own published client (`@1backend/client`, its `RegistrySvcApi`) against an agent,
 * unchanged: it registers without a slug (1Backend takes the slug from the caller's identity), lists
 * and removes instances. With a service token, the registration takes the token's slug.
 */
import { Configuration, RegistrySvcApi } from '@1backend/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Tokens } from '../../src/http/index.ts'
import { instanceIdForUrl } from '../../src/model/index.ts'
import { SELF_URL, startServer, type TestServer } from './fixtures.ts'

const SERVICE_TOKEN = 'orders-service-token-0123'

describe("1Backend's published client", () => {
  let s: TestServer
  let anonymous: RegistrySvcApi
  let orders: RegistrySvcApi

  beforeAll(async () => {
    const tokens = Tokens.from(
      undefined,
      JSON.stringify([{ token: SERVICE_TOKEN, role: 'service', slug: 'orders' }]),
    )
    s = await startServer({ init: { tokens: { current: () => tokens } } })
    anonymous = new RegistrySvcApi(new Configuration({ basePath: s.url }))
    orders = new RegistrySvcApi(new Configuration({ basePath: s.url, apiKey: `Bearer ${SERVICE_TOKEN}` }))
  })
  afterAll(() => s.close())

  it('registers an instance without a slug, lists it by every field, and removes it (with a service token)', async () => {
    const url = 'http://127.0.0.1:8081/api'
    await orders.registerInstance({ body: { url, deploymentId: 'depl-1' } })
    const id = instanceIdForUrl(url)
    const { instances } = await orders.listInstances({ id })
    expect(instances).toHaveLength(1)
    expect(instances![0]).toMatchObject({
      id,
      url,
      slug: 'orders',
      deploymentId: 'depl-1',
      nodeUrl: SELF_URL,
      status: 'Unknown',
    })
    expect((await anonymous.listInstances({ slug: 'orders' })).instances?.map((i) => i.id)).toEqual([id])
    expect((await anonymous.listInstances({ deploymentId: 'depl-1' })).instances?.map((i) => i.id)).toEqual([
      id,
    ])
    await orders.removeInstance({ id })
    expect((await anonymous.listInstances({ id })).instances ?? []).toEqual([])
  })

  it('registers an instance that then has no slug at all (no token), lists it by its address and removes it', async () => {
    const tokens = Tokens.from(undefined)
    const open = await startServer({ init: { tokens: { current: () => tokens } } })
    try {
      const client = new RegistrySvcApi(new Configuration({ basePath: open.url }))
      const url = 'http://127.0.0.1:8082/x'
      await client.registerInstance({ body: { url } })
      const { instances } = await client.listInstances({ ip: '127.0.0.1', scheme: 'http' })
      expect(instances?.map((i) => [i.id, i.url, i.slug, i.status])).toEqual([
        [instanceIdForUrl(url), url, undefined, 'Unknown'],
      ])
      await client.removeInstance({ id: instanceIdForUrl(url) })
      expect((await client.listInstances({})).instances).toEqual([])
    } finally {
      await open.close()
    }
  })
})
