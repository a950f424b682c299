import { Command, InvalidArgumentError, Option } from 'commander'
import { INSTANCE_STATUSES, type Instance } from '../../model/index.ts'
import { ago, formatTable } from '../table.ts'
import { clientOf, print, printJson } from './context.ts'

const FILTERS = [
  ['slug', '--slug <slug>', 'owning service slug'],
  ['id', '--id <id>', 'instance id'],
  ['host', '--host <host>', 'host name'],
  ['ip', '--ip <ip>', 'IP address'],
  ['scheme', '--scheme <scheme>', 'URL scheme'],
  ['path', '--path <path>', 'URL path'],
  ['deploymentId', '--deployment-id <id>', 'deployment id'],
  ['tag', '--tag <tag>', 'tag'],
] as const

export function instancesCommand(): Command {
  const instances = new Command('instances').description('Running, callable copies of services.')

  const list = instances
    .command('list')
    .description('List instances; filters combine (AND).')
    .option('--json', 'print JSON instead of a table')
  for (const [, flag, what] of FILTERS) list.option(flag, `only instances with this ${what}`)
  list.addOption(
    new Option('--status <status>', 'only instances with this status').choices(INSTANCE_STATUSES),
  )
  list.action(async (options: Record<string, string | boolean | undefined>, command: Command) => {
    const query = new URLSearchParams()
    for (const [key] of FILTERS) if (typeof options[key] === 'string') query.set(key, options[key])
    if (typeof options.status === 'string') query.set('status', options.status)
    const suffix = query.size > 0 ? `?${query}` : ''
    const { instances: found } = await clientOf(command).request<{ instances: Instance[] }>(
      'GET',
      `/registry-svc/instances${suffix}`,
    )
    if (options.json) return printJson(found)
    print(
      formatTable(
        ['ID', 'SLUG', 'URL', 'STATUS', 'LAST HEARTBEAT'],
        found.map((i) => [i.id, i.slug ?? '-', i.url, i.status, ago(i.lastHeartbeat)]),
      ),
    )
  })

  instances
    .command('register')
    .description('Register an instance by its address, or by --scheme, --host or --ip, --port and --path.')
    // A positional address, because --url (before the command) names the agent to talk to.
    .argument('[address]', 'full address of the instance, e.g. http://10.0.0.5:8080/api')
    .requiredOption('--slug <slug>', 'owning service slug (the lookup key)')
    .option('--scheme <scheme>', 'URL scheme when no address is given')
    .option('--host <host>', 'host name when no address is given')
    .option('--ip <ip>', 'IP address when no address is given')
    .option('--port <port>', 'port when no address is given', (value) => {
      const port = Number(value)
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new InvalidArgumentError('must be an integer from 1 to 65535.')
      return port
    })
    .option('--path <path>', 'URL path when no address is given')
    .option('--id <id>', 'instance id (default: derived from the URL)')
    .option('--deployment-id <id>', 'deployment this instance belongs to')
    .option('--node-url <url>', 'URL of the node it runs on (default: the agent)')
    .option('--tag <tag>', 'a tag; repeat for more', (tag: string, tags: string[] = []) => [...tags, tag])
    .action(async (address: string | undefined, options: Record<string, unknown>, command: Command) => {
      const body: Record<string, unknown> = address === undefined ? {} : { url: address }
      for (const key of ['slug', 'scheme', 'host', 'ip', 'port', 'path', 'id', 'deploymentId', 'nodeUrl']) {
        if (options[key] !== undefined) body[key] = options[key]
      }
      if (options.tag !== undefined) body.tags = options.tag
      const client = clientOf(command)
      await client.request('PUT', '/registry-svc/instance', body)
      print(`registered instance of ${String(options.slug)}\n`)
    })

  instances
    .command('remove')
    .description('Remove an instance by id.')
    .argument('<id>', 'instance id, as listed')
    .action(async (id: string, _options: unknown, command: Command) => {
      await clientOf(command).request('DELETE', `/registry-svc/instance/${encodeURIComponent(id)}`)
      print(`removed instance ${id}\n`)
    })
  return instances
}
