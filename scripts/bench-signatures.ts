/**
 * What signing node records costs (README, Security model): µs per sign and per verify with Node's
 * native Ed25519 (`node:crypto`, what the agent uses), against `@libp2p/crypto`'s JavaScript Ed25519
 * measured in the same run, and the bytes a signature adds to a record.
 *
 *   npm run bench:signatures [-- ROUNDS]
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Node } from '../src/model/index.ts'
import { checkNodeSignature, nodeSigner } from '../src/replica/node-signature.ts'

const ROUNDS = Number(process.argv[2] ?? 5)
const N = 5_000

const key = await generateKeyPair('Ed25519')
const peerId = peerIdFromPrivateKey(key).toString()
const signer = nodeSigner('node-a', peerId, key.raw)
const record: Node = {
  id: 'node-a',
  url: 'http://127.0.0.1:11337',
  lastHeartbeat: new Date().toISOString(),
  usage: {
    cpu: { used: 0.5, total: 2, percent: 25 },
    memory: { used: 1e9, total: 4e9, percent: 25 },
    disk: { used: 1e10, total: 1e11, percent: 10 },
  },
  gpus: [],
  multiaddrs: [`/ip4/127.0.0.1/tcp/11338/p2p/${peerId}`],
  peerId,
}
const version = { ts: Date.now(), c: 0, node: 'node-a' }
const signed = signer.sign(record, version)
const bytes = new TextEncoder().encode(JSON.stringify(record))

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[sorted.length >> 1]!
}

async function perOp(run: () => unknown | Promise<unknown>): Promise<number> {
  const start = performance.now()
  for (let i = 0; i < N; i++) await run()
  return ((performance.now() - start) * 1000) / N
}

const rows: Record<string, number[]> = {
  'sign a record (native, canonical JSON included)': [],
  'verify a record (native, canonical JSON included)': [],
  'sign the same bytes (@libp2p/crypto, JS)': [],
  'verify the same bytes (@libp2p/crypto, JS)': [],
}
const jsSignature = await key.sign(bytes)
for (let round = 0; round < ROUNDS; round++) {
  rows['sign a record (native, canonical JSON included)']!.push(
    await perOp(() => signer.sign(record, version)),
  )
  rows['verify a record (native, canonical JSON included)']!.push(
    await perOp(() => checkNodeSignature(signed, version)),
  )
  rows['sign the same bytes (@libp2p/crypto, JS)']!.push(await perOp(() => key.sign(bytes)))
  rows['verify the same bytes (@libp2p/crypto, JS)']!.push(
    await perOp(() => key.publicKey.verify(bytes, jsSignature)),
  )
}
console.log(`node record signatures: ${N} operations x ${ROUNDS} rounds, medians; Node ${process.version}`)
for (const [name, values] of Object.entries(rows)) {
  console.log(
    `${name.padEnd(52)} ${median(values).toFixed(1).padStart(7)} µs  (range ${Math.min(...values).toFixed(1)}-${Math.max(...values).toFixed(1)})`,
  )
}
const added = JSON.stringify(signed).length - JSON.stringify(record).length
console.log(
  `bytes a signature adds to a record: ${added} (record ${JSON.stringify(record).length} -> ${JSON.stringify(signed).length})`,
)
