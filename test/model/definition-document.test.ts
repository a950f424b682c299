import { describe, expect, it } from 'vitest'
import { parseDefinitionsDocument } from '../../src/model/index.ts'
import { SEED_A_JSON, SEED_B_JSON, SEED_YAML, TEST_A, TEST_B } from './fixtures.ts'
import { expectExactly, expectFieldError } from './helpers.ts'

describe('parseDefinitionsDocument', () => {
  it('reads both seed examples from one multi-document YAML file', () => {
    expectExactly(parseDefinitionsDocument(SEED_YAML, 'seed.yaml'), [TEST_A, TEST_B])
  })

  it('reads each seed example from its own YAML file (.yml too)', () => {
    const [a, b] = SEED_YAML.split('---\n')
    expectExactly(parseDefinitionsDocument(a!, 'a.yml'), [TEST_A])
    expectExactly(parseDefinitionsDocument(b!, 'b.YAML'), [TEST_B])
  })

  it('reads the seed examples from JSON: object, array and the API request body', () => {
    expectExactly(parseDefinitionsDocument(JSON.stringify(SEED_A_JSON), 'a.json'), [TEST_A])
    expectExactly(parseDefinitionsDocument(JSON.stringify([SEED_A_JSON, SEED_B_JSON]), 'ab.json'), [
      TEST_A,
      TEST_B,
    ])
    expectExactly(parseDefinitionsDocument(JSON.stringify({ definition: SEED_B_JSON }), 'b.json'), [TEST_B])
  })

  it('accepts the normal form back (a listed definition can be saved again)', () => {
    expectExactly(parseDefinitionsDocument(JSON.stringify([TEST_A, TEST_B], null, 2), 'out.json'), [
      TEST_A,
      TEST_B,
    ])
  })

  it('ignores an empty document after a trailing ---', () => {
    expectExactly(parseDefinitionsDocument(`${SEED_YAML}---\n`, 'seed.yaml'), [TEST_A, TEST_B])
  })

  it('names the index of a bad definition in a multi-document file', () => {
    const text = 'id: ok\nimage: {name: x}\n---\nid: bad\nimage: {port: 80}\n'
    expectFieldError(
      () => parseDefinitionsDocument(text, 'defs.yaml'),
      'definitions[1].image.name',
      'definitions[1].image.name is required',
    )
  })

  it('reports YAML syntax errors with the file name and line', () => {
    const error = expectFieldError(
      () => parseDefinitionsDocument('id: a\nimage:\n  name: [x\n', 'bad.yaml'),
      'bad.yaml',
      /^bad\.yaml: invalid YAML: .*line \d+, column \d+$/,
    )
    expect(error.message).not.toContain('\n')
  })

  it('reports duplicate YAML keys and unresolved aliases', () => {
    expectFieldError(
      () => parseDefinitionsDocument('id: a\nid: b\n', 'd.yaml'),
      'd.yaml',
      /keys must be unique.*line 2/,
    )
    expectFieldError(
      () => parseDefinitionsDocument('id: *nope\n', 'd.yaml'),
      'd.yaml',
      /invalid YAML: .*alias/,
    )
  })

  it('reports JSON syntax errors with the file name and position', () => {
    expectFieldError(
      () => parseDefinitionsDocument('{"id": "a",\n}', 'bad.json'),
      'bad.json',
      /^bad\.json: invalid JSON: .*line 2/,
    )
  })

  it('refuses other extensions, empty files and extra fields next to "definition"', () => {
    expectFieldError(
      () => parseDefinitionsDocument(SEED_YAML, 'seed.txt'),
      'seed.txt',
      /unsupported file type/,
    )
    expectFieldError(
      () => parseDefinitionsDocument('', 'empty.yaml'),
      'empty.yaml',
      'empty.yaml contains no definitions',
    )
    expectFieldError(
      () => parseDefinitionsDocument('[]', 'empty.json'),
      'empty.json',
      'empty.json contains no definitions',
    )
    expectFieldError(
      () => parseDefinitionsDocument(JSON.stringify({ definition: SEED_A_JSON, force: true }), 'w.json'),
      'force',
      'w.json has unknown field "force" next to "definition"',
    )
  })

  it('validates a lone definition under the name "definition"', () => {
    expectFieldError(
      () => parseDefinitionsDocument('id: a\nimage: {}\n', 'one.yaml'),
      'definition.image.name',
    )
  })
})
