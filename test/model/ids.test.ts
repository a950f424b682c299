import { describe, expect, it } from 'vitest'
import { assertIdentifier, IDENTIFIER_PATTERN, isIdentifier } from '../../src/model/index.ts'
import { expectFieldError } from './helpers.ts'

describe('identifiers', () => {
  it.each(['a', 'user-svc', 'inst_0123abcd', 'node.1', 'a~b:c', 'x'.repeat(128)])('accepts %j', (id) => {
    expect(isIdentifier(id)).toBe(true)
    expect(assertIdentifier(id, 'id')).toBe(id)
    expect(new RegExp(IDENTIFIER_PATTERN).test(id)).toBe(true)
  })

  it.each([
    ['slash', 'a/b'],
    ['control character', 'a\u0000b'],
    ['newline at the end', 'abc\n'],
    ['129 characters', 'x'.repeat(129)],
    ['empty', ''],
    ['space', 'a b'],
    ['non-ASCII letter', 'é'],
  ])('rejects %s', (_, id) => {
    expect(isIdentifier(id)).toBe(false)
    expectFieldError(
      () => assertIdentifier(id, 'definition.id'),
      'definition.id',
      /definition\.id must match/,
    )
  })

  it('says what is wrong with a non-string', () => {
    expect(isIdentifier(42)).toBe(false)
    expectFieldError(() => assertIdentifier(42, 'node.id'), 'node.id', 'node.id must be a string')
  })
})
