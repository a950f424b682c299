import { Command } from 'commander'
import type { Node } from '../../model/index.ts'
import { ago, formatTable } from '../table.ts'
import { clientOf, print, printJson } from './context.ts'

export function nodesCommand(): Command {
  const nodes = new Command('nodes').description('Machines running an agent.')
  nodes
    .command('list')
    .description('List every node the agent knows, with its last heartbeat.')
    .option('--json', 'print JSON instead of a table')
    .action(async (options: { json?: boolean }, command: Command) => {
      const { nodes: list } = await clientOf(command).request<{ nodes: Node[] }>(
        'POST',
        '/registry-svc/nodes',
        {},
      )
      if (options.json) return printJson(list)
      print(
        formatTable(
          ['NODE ID', 'URL', 'LAST HEARTBEAT', 'LIVENESS'],
          list.map((n) => [n.id, n.url, ago(n.lastHeartbeat), String(n.liveness ?? '-')]),
        ),
      )
    })
  nodes
    .command('delete')
    .description('Delete a node record (a live node re-announces itself with its next heartbeat).')
    .argument('<url>', 'the node URL, as listed')
    .action(async (url: string, _options: unknown, command: Command) => {
      await clientOf(command).request('DELETE', `/registry-svc/node/${encodeURIComponent(url)}`)
      print(`deleted node ${url}\n`)
    })
  return nodes
}
