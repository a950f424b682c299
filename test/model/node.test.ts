import { describe, expect, it } from 'vitest'
import { type Node, parseNode } from '../../src/model/index.ts'
import { expectExactly, expectFieldError } from './helpers.ts'

const usage = { used: 1, total: 4, percent: 25 }
const node: Node = {
  id: 'node_a1',
  url: 'http://127.0.0.1:11337',
  availabilityZone: 'eu-1a',
  region: 'eu-1',
  lastHeartbeat: '2026-11-27T12:00:00.000Z',
  usage: { cpu: usage, memory: usage, disk: usage },
  gpus: [{ id: 'g0', name: 'A100' }],
}

describe('parseNode', () => {
  it('accepts a full record', () => {
    expectExactly(parseNode(node), node)
  })

  it('keeps fields agents add, after the known ones, sorted, with nested keys sorted', () => {
    const withExtras = {
      peerId: '12D3Koo',
      liveness: { state: 'alive', missed: 0 },
      ...node,
      multiaddrs: ['/ip4/1/tcp/2'],
    }
    const out = parseNode(withExtras)
    expect(Object.keys(out)).toEqual([...Object.keys(node), 'liveness', 'multiaddrs', 'peerId'])
    expect(JSON.stringify(out.liveness)).toBe('{"missed":0,"state":"alive"}')
    expectExactly(parseNode(out), out)
  })

  it('orders known nested fields by schema, whatever the input order', () => {
    const shuffled = {
      ...node,
      usage: { disk: { percent: 25, total: 4, used: 1 }, memory: usage, cpu: usage },
    }
    expectExactly(parseNode(shuffled), node)
  })

  it('accepts the minimal record 1Backend sends', () => {
    const minimal = { id: 'n', url: 'http://h:58231', lastHeartbeat: '0001-01-01T00:00:00Z' }
    expectExactly(parseNode(minimal), minimal)
  })

  it.each([
    ['missing id', { id: undefined }, 'node.id', 'node.id is required'],
    ['id with slash', { id: 'a/b' }, 'node.id', /identifier rule/],
    ['relative url', { url: 'host:1' }, 'node.url', /with a host/],
    [
      'missing lastHeartbeat',
      { lastHeartbeat: undefined },
      'node.lastHeartbeat',
      'node.lastHeartbeat is required',
    ],
    [
      'bad usage',
      { usage: { cpu: usage, memory: usage, disk: { ...usage, used: '1' } } },
      'node.usage.disk.used',
      'node.usage.disk.used must be a number',
    ],
    ['gpus not an array', { gpus: {} }, 'node.gpus', 'node.gpus must be an array'],
    ['gpu not an object', { gpus: ['A100'] }, 'node.gpus[0]', 'node.gpus[0] must be an object'],
  ])('rejects %s', (_, change, field, message) => {
    const value = JSON.parse(JSON.stringify({ ...node, ...change }))
    expectFieldError(() => parseNode(value), field, message)
  })
})
