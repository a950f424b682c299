/**
 * The baseline of `npm run bench:dns`: the least a DNS server can do with the agent's codec. It decodes
 * each UDP query with dns-packet and encodes the same fixed answer the agent gives for a 10-instance
 * slug (ten A records for the name asked), with no lookup, no cache, no shuffle.
 *
 *   node scripts/dns-responder.ts PORT   (prints "listening" when bound)
 */
import { createSocket } from 'node:dgram'
import dnsPacket, { type Answer } from 'dns-packet'

const port = Number(process.argv[2] ?? 0)
const addresses = Array.from({ length: 10 }, (_, i) => `127.0.1.${i + 1}`)
const socket = createSocket('udp4')
socket.on('message', (message, remote) => {
  let query: dnsPacket.Packet
  try {
    query = dnsPacket.decode(message)
  } catch {
    return
  }
  const question = query.questions?.[0]
  if (question === undefined) return
  const answers: Answer[] = addresses.map((data) => ({ type: 'A', name: question.name, ttl: 5, data }))
  const response = dnsPacket.encode({
    id: query.id ?? 0,
    type: 'response',
    flags: (1 << 10) | ((query.flags ?? 0) & (1 << 8)),
    questions: [question],
    answers,
  })
  socket.send(response, remote.port, remote.address)
})
socket.bind(port, '127.0.0.1', () => console.log(`listening ${socket.address().port}`))
