import { Command, InvalidArgumentError, Option } from 'commander'
import { CHECK_TYPES, INSTANCE_STATUSES, type Instance } from '../../model/index.ts'
import { parseDurationMs } from '../../support/duration.ts'
import { CliError } from '../client.ts'
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

  const list = withFilters(
    instances
      .command('list')
      .description('List instances; filters combine (AND).')
      .option('--json', 'print JSON instead of a table'),
  )
  list.action(async (options: Record<string, string | boolean | undefined>, command: Command) => {
    const { instances: found } = await clientOf(command).request<{ instances: Instance[] }>(
      'GET',
      `/registry-svc/instances${filterQuery(options)}`,
    )
    if (options.json) return printJson(found)
    print(instanceTable(found))
  })

  const watch = withFilters(
    instances
      .command('watch')
      .description(
        'Print the instances matching the filters now, and again on every change (Ctrl-C ends it).',
      )
      .option('--json', 'print each list as one line of JSON instead of a table'),
  )
  watch.action(async (options: Record<string, string | boolean | undefined>, command: Command) => {
    const stop = new AbortController()
    const end = () => stop.abort()
    process.once('SIGINT', end)
    process.once('SIGTERM', end)
    try {
      await clientOf(command).watch(
        `/registry-svc/instances/watch${filterQuery(options)}`,
        (data) => {
          const found = (data as { instances: Instance[] }).instances
          print(options.json ? `${JSON.stringify(found)}\n` : `${instanceTable(found)}\n`)
        },
        stop.signal,
      )
    } finally {
      process.off('SIGINT', end)
      process.off('SIGTERM', end)
    }
  })

  instances
    .command('register')
    .description('Register an instance by its address, or by --scheme, --host or --ip, --port and --path.')
    // A positional address, because --url (before the command) names the agent to talk to.
    .argument('[address]', 'full address of the instance, e.g. http://10.0.0.5:8080/api')
    .option('--slug <slug>', 'owning service slug (the lookup key; a service token gives its own)')
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
    .addOption(
      new Option('--check <type>', 'how the owner agent checks it (default: the agent’s)').choices(
        CHECK_TYPES,
      ),
    )
    .option('--check-path <path>', 'http check: path joined to the address, e.g. /health')
    .option('--check-interval <duration>', 'time between checks, e.g. 5s', duration)
    .option('--check-timeout <duration>', 'deadline of one check, e.g. 2s', duration)
    .option(
      '--ttl <duration>',
      'ttl check: longest time between heartbeats, e.g. 10s (implies --check ttl)',
      duration,
    )
    .option('--deregister-after <duration>', 'delete it once down this long, e.g. 5m; 0 never', duration)
    .action(async (address: string | undefined, options: Record<string, unknown>, command: Command) => {
      const body: Record<string, unknown> = address === undefined ? {} : { url: address }
      for (const key of ['slug', 'scheme', 'host', 'ip', 'port', 'path', 'id', 'deploymentId', 'nodeUrl']) {
        if (options[key] !== undefined) body[key] = options[key]
      }
      if (options.tag !== undefined) body.tags = options.tag
      const check = checkOf(options)
      if (check !== undefined) body.check = check
      const client = clientOf(command)
      const { instance } = await client.request<{ instance: Instance }>('PUT', '/registry-svc/instance', body)
      print(
        `registered instance ${instance.id}${instance.slug === undefined ? '' : ` of ${instance.slug}`}\n`,
      )
    })

  instances
    .command('heartbeat')
    .description('Renew an instance on the agent that owns it (ttl checks), optionally with a status.')
    .argument('<id>', 'instance id, as listed')
    .addOption(
      new Option('--status <status>', 'what the service says of itself (default Healthy)').choices(
        INSTANCE_STATUSES.filter((s) => s !== 'Unknown'),
      ),
    )
    .option('--details <text>', 'a sentence to go with the status')
    .action(async (id: string, options: { status?: string; details?: string }, command: Command) => {
      const body: Record<string, string> = {}
      if (options.status !== undefined) body.status = options.status
      if (options.details !== undefined) body.details = options.details
      await clientOf(command).request(
        'PUT',
        `/registry-svc/instance/${encodeURIComponent(id)}/heartbeat`,
        body,
      )
      print(`renewed instance ${id}\n`)
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

/** The filter flags `list` and `watch` share, `--status` with its choices. */
function withFilters(command: Command): Command {
  for (const [, flag, what] of FILTERS) command.option(flag, `only instances with this ${what}`)
  return command.addOption(
    new Option('--status <status>', 'only instances with this status').choices(INSTANCE_STATUSES),
  )
}

/** The filters given as a query string (`?slug=…&status=…`), or '' when none is. */
function filterQuery(options: Record<string, string | boolean | undefined>): string {
  const query = new URLSearchParams()
  for (const key of [...FILTERS.map(([key]) => key), 'status']) {
    const value = options[key]
    if (typeof value === 'string') query.set(key, value)
  }
  return query.size > 0 ? `?${query}` : ''
}

function instanceTable(found: readonly Instance[]): string {
  return formatTable(
    ['ID', 'SLUG', 'URL', 'STATUS', 'LAST HEARTBEAT'],
    found.map((i) => [i.id, i.slug ?? '-', i.url, i.status, ago(i.lastHeartbeat)]),
  )
}

/** A duration flag (`10s`, `5m`, `1500` ms) as whole milliseconds. */
function duration(value: string): number {
  const n = parseDurationMs(value)
  if (n === undefined) {
    throw new InvalidArgumentError('must be a duration such as 500ms, 10s, 5m or 1h (a bare number is ms).')
  }
  return n
}

/** The `check` of a registration from the flags; undefined when none is given. */
function checkOf(options: Record<string, unknown>): Record<string, unknown> | undefined {
  const fields: Array<[string, string]> = [
    ['checkPath', 'path'],
    ['checkInterval', 'intervalMs'],
    ['checkTimeout', 'timeoutMs'],
    ['ttl', 'ttlMs'],
    ['deregisterAfter', 'deregisterAfterMs'],
  ]
  const given = fields.filter(([flag]) => options[flag] !== undefined)
  if (options.check === undefined && given.length === 0) return undefined
  const type =
    options.check ??
    (options.ttl !== undefined ? 'ttl' : options.checkPath !== undefined ? 'http' : undefined)
  if (type === undefined) {
    throw new CliError('--check-interval, --check-timeout and --deregister-after need --check <type>')
  }
  const check: Record<string, unknown> = { type }
  for (const [flag, field] of given) check[field] = options[flag]
  return check
}
