// Serves the HTTP app on a LevelDB replica in the directory given as argv[2], and prints its URL.
// Run as a child process by durability.test.ts, which kills it with SIGKILL.
import { pino } from 'pino'
import { buildApp, listen } from '../../src/http/index.ts'
import { LevelStore } from '../../src/replica/level-store.ts'
import { openReplica } from '../replica/fixtures.ts'

const replica = await openReplica('node-a', {
  store: new LevelStore({ path: process.argv[2]! }),
  now: Date.now,
})
const app = await buildApp(
  {},
  {
    replica,
    self: { nodeId: 'node-a', selfUrl: 'http://127.0.0.1:11337' },
    log: pino({ level: 'silent' }),
    metricsSources: { replicaCounts: () => replica.counts(), peersConnected: () => 0 },
  },
)
const { url } = await listen(app, { host: '127.0.0.1', port: 0 })
process.stdout.write(`${url}\n`)
