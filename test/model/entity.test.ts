import { describe, expect, it } from 'vitest'
import { ENTITY_KINDS, instanceFromRegistration, parseEntity } from '../../src/model/index.ts'
import { TEST_A } from './fixtures.ts'
import { expectFieldError } from './helpers.ts'

const now = new Date('2026-11-27T12:00:00.000Z')

describe('parseEntity', () => {
  it('dispatches on kind', () => {
    expect(ENTITY_KINDS).toEqual(['definition', 'instance', 'node'])
    expect(parseEntity('definition', TEST_A)).toStrictEqual(TEST_A)
    const instance = instanceFromRegistration({ slug: 's', url: 'http://a:1' }, { now })
    expect(parseEntity('instance', instance)).toStrictEqual(instance)
    const node = { id: 'n', url: 'http://n:1', lastHeartbeat: now.toISOString() }
    expect(parseEntity('node', node)).toStrictEqual(node)
  })

  it('names fields after the kind, or after the given root', () => {
    expectFieldError(() => parseEntity('instance', {}), 'instance.id', 'instance.id is required')
    expectFieldError(() => parseEntity('node', { id: 'n' }, 'change.value'), 'change.value.url')
  })
})
