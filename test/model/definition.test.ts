import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseDefinition } from '../../src/model/index.ts'
import { SEED_A_JSON, SEED_B_JSON, TEST_A, TEST_B } from './fixtures.ts'
import { expectExactly, expectFieldError, validationError } from './helpers.ts'

describe('parseDefinition: forms', () => {
  it('normalises the short image form', () => {
    expectExactly(parseDefinition(SEED_A_JSON), TEST_A)
  })

  it('maps hostPort onto itself when the repository declares no internal port', () => {
    expectExactly(parseDefinition(SEED_B_JSON), TEST_B)
  })

  it('keeps the normal form as it is, with keys in schema order', () => {
    const input = {
      ports: [{ host: 8887, internal: 8080 }],
      envars: [{ value: 'x', key: 'A' }],
      clients: [{ url: 'https://npm.im/c', language: 'JavaScript' }],
      apiSpecs: [
        { metadata: { z: '1', a: '2' }, version: '3.0.0', protocolType: 'OpenAPI', url: 'https://x/o.json' },
      ],
      image: { internalPorts: [8080, 9090], name: 'nginx:latest' },
      id: 'web',
    }
    expectExactly(parseDefinition(input), {
      id: 'web',
      image: { name: 'nginx:latest', internalPorts: [8080, 9090] },
      apiSpecs: [
        { url: 'https://x/o.json', protocolType: 'OpenAPI', version: '3.0.0', metadata: { a: '2', z: '1' } },
      ],
      clients: [{ language: 'JavaScript', url: 'https://npm.im/c' }],
      envars: [{ key: 'A', value: 'x' }],
      ports: [{ internal: 8080, host: 8887 }],
    })
  })

  it("accepts 1Backend's repository.ports as the internal ports", () => {
    const d = parseDefinition({
      id: 'r',
      repository: { url: 'https://g/r.git', version: 'v1', ports: [80, 81] },
    })
    expectExactly(d, {
      id: 'r',
      repository: { url: 'https://g/r.git', version: 'v1', internalPorts: [80, 81] },
    })
  })

  it('maps hostPort to the first internal port', () => {
    const d = parseDefinition({ id: 'r', repository: { url: 'u', port: 3000 }, hostPort: 80 })
    expectExactly(d, {
      id: 'r',
      repository: { url: 'u', internalPorts: [3000] },
      ports: [{ internal: 3000, host: 80 }],
    })
  })

  it('gives internalPorts [] when no port is declared and drops empty optional lists', () => {
    const d = parseDefinition({
      id: 'n',
      image: { name: 'busybox' },
      apiSpecs: [],
      clients: [],
      envars: [],
      ports: [],
    })
    expectExactly(d, { id: 'n', image: { name: 'busybox', internalPorts: [] } })
  })

  it('returns a fresh object that does not alias the input', () => {
    const input = { id: 'a', image: { name: 'x', internalPorts: [1] } }
    const out = parseDefinition(input)
    out.image!.internalPorts.push(2)
    expect(input.image.internalPorts).toEqual([1])
  })

  it('keeps a metadata key named __proto__ as data', () => {
    const input = JSON.parse(
      '{"id":"a","image":{"name":"x"},"apiSpecs":[{"url":"u","metadata":{"__proto__":"v"}}]}',
    )
    const out = parseDefinition(input)
    expect(Object.hasOwn(out.apiSpecs![0]!.metadata!, '__proto__')).toBe(true)
    expect(JSON.stringify(out.apiSpecs![0]!.metadata)).toBe('{"__proto__":"v"}')
  })
})

describe('parseDefinition: errors name the field', () => {
  const image = { name: 'nginx', internalPorts: [80] }

  it.each([
    [
      'missing image.name',
      { id: 'a', image: { port: 80 } },
      'definition.image.name',
      'definition.image.name is required',
    ],
    [
      'empty image.name',
      { id: 'a', image: { name: '' } },
      'definition.image.name',
      'definition.image.name must be a non-empty string',
    ],
    ['missing id', { image }, 'definition.id', 'definition.id is required'],
    [
      'both image and repository',
      { id: 'a', image, repository: { url: 'u' } },
      'definition',
      /exactly one of image or repository/,
    ],
    ['neither image nor repository', { id: 'a' }, 'definition', 'definition needs an image or a repository'],
    [
      'port 0',
      { id: 'a', image: { name: 'x', port: 0 } },
      'definition.image.port',
      'definition.image.port must be an integer 1-65535',
    ],
    [
      'port 70000',
      { id: 'a', image: { name: 'x', internalPorts: [80, 70000] } },
      'definition.image.internalPorts[1]',
      'definition.image.internalPorts[1] must be an integer 1-65535',
    ],
    [
      'port "80"',
      { id: 'a', image, hostPort: '80' },
      'definition.hostPort',
      'definition.hostPort must be an integer 1-65535',
    ],
    [
      'port 80.5',
      { id: 'a', image, ports: [{ internal: 80, host: 80.5 }] },
      'definition.ports[0].host',
      'definition.ports[0].host must be an integer 1-65535',
    ],
    [
      'missing ports[].internal',
      { id: 'a', image, ports: [{ host: 80 }] },
      'definition.ports[0].internal',
      'definition.ports[0].internal is required',
    ],
    [
      'unknown top-level field',
      { id: 'a', image, foo: 1 },
      'definition.foo',
      'definition has unknown field "foo"',
    ],
    [
      'unknown nested fields',
      { id: 'a', image: { ...image, tag: 1, pull: 2 } },
      'definition.image.tag',
      'definition.image has unknown fields "tag", "pull"',
    ],
    [
      'apiSpecs url not a string',
      { id: 'a', image, apiSpecs: [{ url: 5 }] },
      'definition.apiSpecs[0].url',
      'definition.apiSpecs[0].url must be a string',
    ],
    [
      'metadata value not a string',
      { id: 'a', image, apiSpecs: [{ url: 'u', metadata: { 'a.b': 1 } }] },
      'definition.apiSpecs[0].metadata["a.b"]',
      'definition.apiSpecs[0].metadata["a.b"] must be a string',
    ],
    [
      'envars not an array',
      { id: 'a', image, envars: { A: 'b' } },
      'definition.envars',
      'definition.envars must be an array',
    ],
    [
      'hostPort with ports',
      { id: 'a', image, hostPort: 80, ports: [{ internal: 80, host: 80 }] },
      'definition.hostPort',
      'definition.hostPort cannot be combined with definition.ports',
    ],
    [
      'port with internalPorts',
      { id: 'a', image: { ...image, port: 80 } },
      'definition.image.port',
      'definition.image.internalPorts and definition.image.port cannot be combined',
    ],
    [
      'repository ports with internalPorts',
      { id: 'a', repository: { url: 'u', ports: [1], internalPorts: [1] } },
      'definition.repository.ports',
      /cannot be combined/,
    ],
    ['not an object', 'nginx', 'definition', 'definition must be an object'],
    ['null', null, 'definition', 'definition must be an object'],
  ])('%s', (_, input, field, message) => {
    expectFieldError(() => parseDefinition(input), field, message)
  })

  it.each([
    ['a slash', 'a/b'],
    ['a control character', 'a\u0007b'],
    ['129 characters', 'i'.repeat(129)],
    ['nothing', ''],
  ])('rejects an id with %s', (_, id) => {
    expectFieldError(
      () => parseDefinition({ id, image }),
      'definition.id',
      /^definition\.id must match the identifier rule/,
    )
  })

  it('names at most five unknown fields and cuts long names short', () => {
    const input = Object.fromEntries([
      ['id', 'a'],
      ['image', image],
      ...'bcdefghij'.split('').map((k) => [k, 1]),
    ])
    const message = 'definition has unknown fields "b", "c", "d", "e", "f"'
    expectFieldError(() => parseDefinition(input), 'definition.b', message)
    const long = validationError(() => parseDefinition({ id: 'a', image, ['x'.repeat(1000)]: 1 }))
    expect(long.message.length).toBeLessThan(200)
    expect(long.field.length).toBeLessThan(100)
  })

  it('uses the given root field name', () => {
    expectFieldError(
      () => parseDefinition({ id: 'a', image: {} }, 'definitions[3]'),
      'definitions[3].image.name',
    )
  })
})

const port = fc.integer({ min: 1, max: 65_535 })
const ports = fc.array(port, { maxLength: 3 })
const text = fc.string({ maxLength: 12 })
const nonEmpty = fc.string({ minLength: 1, maxLength: 12 })
const id = fc.stringMatching(/^[A-Za-z0-9._~:-]{1,16}$/)
/** Any spelling of the internal ports, including none. */
const portSpelling = (names: string[]) =>
  fc.oneof(
    fc.constant({}),
    ...names.map((name) => (name === 'port' ? port : ports).map((v) => ({ [name]: v }))),
  )

const image = fc
  .tuple(nonEmpty, portSpelling(['internalPorts', 'port']))
  .map(([name, p]) => ({ image: { name, ...p } }))
const repository = fc
  .tuple(
    fc.record(
      { url: nonEmpty, version: text, buildContext: text, containerFile: text },
      { requiredKeys: ['url'] },
    ),
    portSpelling(['internalPorts', 'ports', 'port']),
  )
  .map(([r, p]) => ({ repository: { ...r, ...p } }))
const extras = fc.record(
  {
    apiSpecs: fc.array(
      fc.record(
        { url: text, protocolType: text, version: text, metadata: fc.dictionary(text, text, { maxKeys: 3 }) },
        { requiredKeys: ['url'] },
      ),
      { maxLength: 2 },
    ),
    clients: fc.array(fc.record({ language: nonEmpty, url: nonEmpty }), { maxLength: 2 }),
    envars: fc.array(fc.record({ key: nonEmpty, value: text }), { maxLength: 2 }),
  },
  { requiredKeys: [] },
)
const portMapping = fc.oneof(
  fc.constant({}),
  port.map((hostPort) => ({ hostPort })),
  fc.array(fc.record({ internal: port, host: port }), { maxLength: 2 }).map((p) => ({ ports: p })),
)
/** Valid definitions in normal or short form, with fields in arbitrary order. */
const definitionInput = fc
  .tuple(id, fc.oneof(image, repository), extras, portMapping)
  .chain(([i, source, more, mapping]) =>
    fc.shuffledSubarray(Object.entries({ ...source, ...more, ...mapping }), { minLength: 0 }).map((rest) => ({
      id: i,
      ...Object.fromEntries(rest),
      ...source, // always keep image/repository
    })),
  )

describe('parseDefinition: properties', () => {
  it('is idempotent on its own output, including key order', () => {
    fc.assert(
      fc.property(definitionInput, (input) => {
        const once = parseDefinition(input)
        expectExactly(parseDefinition(once), once)
      }),
      { numRuns: 500 },
    )
  })
})
