import { describe, expect, it } from 'vitest'
import { ValidationError } from '../../src/model/index.ts'
import { decodeChange, encodeEntry } from '../../src/replica/change.ts'
import { instance, NOW } from './fixtures.ts'

const good = {
  kind: 'instance',
  id: 'i1',
  version: { ts: NOW, c: 0, node: 'node-a' },
  value: instance('i1', 'user-svc'),
}

describe('decodeChange', () => {
  it('accepts a valid put and a tombstone', () => {
    expect(decodeChange(good)).toEqual(good)
    expect(decodeChange({ ...good, value: null }).value).toBeNull()
    const status = { ...good, basedOn: { ts: NOW - 5, c: 0, node: 'node-b' } }
    expect(decodeChange(status)).toEqual(status)
  })

  it('ignores fields it does not know (a newer agent may add some), keeping the ones it does', () => {
    const newer = {
      ...good,
      extra: 1,
      version: { ...good.version, x: 1 },
      value: { ...good.value, weight: 3 },
    }
    expect(decodeChange(newer)).toEqual({ ...good, value: { ...good.value, weight: 3 } })
  })

  it.each([
    ['not an object', 'garbage', 'change must be an object'],
    ['unknown kind', { ...good, kind: 'user' }, 'change.kind must be one of definition, instance, node'],
    ['id with a slash', { ...good, id: 'a/b' }, 'change.id must match the identifier rule'],
    [
      'negative counter',
      { ...good, version: { ts: NOW, c: -1, node: 'n' } },
      'change.version.c must be an integer',
    ],
    [
      'fractional time',
      { ...good, version: { ts: 1.5, c: 0, node: 'n' } },
      'change.version.ts must be a millisecond',
    ],
    ['missing value', { kind: 'instance', id: 'i1', version: good.version }, 'change.value is required'],
    ['id mismatch', { ...good, id: 'i2' }, 'change.value.id "i1" differs from change.id "i2"'],
    ['invalid entity', { ...good, value: { ...good.value, status: 'Great' } }, 'change.value.status'],
    [
      'basedOn not older',
      { ...good, basedOn: { ts: NOW, c: 1, node: 'node-a' } },
      'change.basedOn must be older than change.version',
    ],
    ['basedOn on a delete', { ...good, value: null, basedOn: { ts: NOW - 1, c: 0, node: 'n' } }, 'on a put'],
    [
      'malformed basedOn',
      { ...good, basedOn: { ts: 'x', c: 0, node: 'n' } },
      'change.basedOn.ts must be a millisecond',
    ],
  ])('rejects %s with a message naming the field', (_name, input, message) => {
    expect(() => decodeChange(input)).toThrow(ValidationError)
    expect(() => decodeChange(input)).toThrow(message)
  })
})

describe('encodeEntry', () => {
  it('is canonical: key order on the wire does not change the stored bytes', () => {
    const reordered = Object.fromEntries(Object.entries(good.value).reverse())
    expect(encodeEntry({ version: good.version, value: reordered as typeof good.value })).toBe(
      encodeEntry({ version: good.version, value: good.value }),
    )
  })
})
