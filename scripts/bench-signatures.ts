/**
 * What signatures cost (README, Security model): µs per sign and per verify of a node record, an
 * instance status write and a beat with Node's native Ed25519 (`node:crypto`, what the agent uses),
 * against `@libp2p/crypto`'s JavaScript Ed25519 measured in the same run, and the bytes each adds.
 *
 *   npm run bench:signatures [-- ROUNDS]
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { encodeBeat } from '../src/liveness/beat.ts'
import type { Instance, Node } from '../src/model/index.ts'
import {
  checkBeatSignature,
  checkNodeSignature,
  checkStatusSignature,
  nodeSigner,
} from '../src/replica/node-signature.ts'

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
const instance: Instance = {
  id: 'inst_0123456789abcdef',
  url: 'http://127.0.0.1:8080',
  scheme: 'http',
  ip: '127.0.0.1',
  port: 8080,
  slug: 'user-svc',
  nodeUrl: 'http://127.0.0.1:11337',
  status: 'Healthy',
  lastHeartbeat: new Date().toISOString(),
}
const basedOn = { ts: version.ts - 1000, c: 0, node: 'node-b' }
const signedStatus = signer.signStatus(instance, version, basedOn)
const beatT = Date.now()
const beatSignature = signer.signBeat(beatT)
const signedRecord = { ...record, signature: signed.signature, signs: signed.signs }

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
  'sign a status write': [],
  'verify a status write': [],
  'sign a beat': [],
  'verify a beat (or a relayed beat time)': [],
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
  rows['sign a status write']!.push(await perOp(() => signer.signStatus(instance, version, basedOn)))
  rows['verify a status write']!.push(
    await perOp(() => checkStatusSignature(signedStatus, version, basedOn, signedRecord)),
  )
  rows['sign a beat']!.push(await perOp(() => signer.signBeat(beatT)))
  rows['verify a beat (or a relayed beat time)']!.push(
    await perOp(() => checkBeatSignature(beatSignature, 'node-a', beatT, signedRecord)),
  )
  rows['sign the same bytes (@libp2p/crypto, JS)']!.push(await perOp(() => key.sign(bytes)))
  rows['verify the same bytes (@libp2p/crypto, JS)']!.push(
    await perOp(() => key.publicKey.verify(bytes, jsSignature)),
  )
}
console.log(`signatures: ${N} operations x ${ROUNDS} rounds, medians; Node ${process.version}`)
for (const [name, values] of Object.entries(rows)) {
  console.log(
    `${name.padEnd(52)} ${median(values).toFixed(1).padStart(7)} µs  (range ${Math.min(...values).toFixed(1)}-${Math.max(...values).toFixed(1)})`,
  )
}
const added = JSON.stringify(signed).length - JSON.stringify(record).length
console.log(
  `bytes a signature adds to a record: ${added} (record ${JSON.stringify(record).length} -> ${JSON.stringify(signed).length})`,
)
const statusAdded = JSON.stringify(signedStatus).length - JSON.stringify(instance).length
console.log(`bytes a signature adds to a status write: ${statusAdded}`)
const beat = { n: 'node-a', t: beatT, s: 1, d: '0123456789abcdef' }
const relayed = { h: { 'node-b': beatT - 500 } }
const beatBytes = (b: object) => encodeBeat(b as Parameters<typeof encodeBeat>[0]).length
console.log(
  `beat bytes: ${beatBytes(beat)} unsigned -> ${beatBytes({ ...beat, g: beatSignature })} signed; ` +
    `per relayed node ${beatBytes({ ...beat, ...relayed }) - beatBytes(beat)} -> ` +
    `${beatBytes({ ...beat, ...relayed, r: { 'node-b': beatSignature } }) - beatBytes(beat)} with its signature`,
)
