import { readFile } from 'node:fs/promises'
import { text as readAll } from 'node:stream/consumers'
import { Command } from 'commander'
import { type Definition, parseDefinitionsDocument } from '../../model/index.ts'
import { CliError } from '../client.ts'
import { formatTable } from '../table.ts'
import { clientOf, print, printJson } from './context.ts'

function source(d: Definition): string {
  if (d.image) return d.image.name
  return d.repository ? `${d.repository.url}${d.repository.version ? `@${d.repository.version}` : ''}` : '-'
}

function ports(d: Definition): string {
  const mapped = (d.ports ?? []).map((p) => `${p.host}:${p.internal}`)
  if (mapped.length > 0) return mapped.join(',')
  return (d.image?.internalPorts ?? d.repository?.internalPorts ?? []).join(',') || '-'
}

export function definitionsCommand(): Command {
  const definitions = new Command('definitions').description('Deployable services (not callable).')
  definitions
    .command('list')
    .description('List definitions.')
    .option('--json', 'print JSON instead of a table')
    .action(async (options: { json?: boolean }, command: Command) => {
      const { definitions: list } = await clientOf(command).request<{ definitions: Definition[] }>(
        'GET',
        '/registry-svc/definitions',
      )
      if (options.json) return printJson(list)
      print(
        formatTable(
          ['ID', 'SOURCE', 'PORTS'],
          list.map((d) => [d.id, source(d), ports(d)]),
        ),
      )
    })
  definitions
    .command('save')
    .description('Save the definitions of a YAML (--- separated) or JSON file, or of standard input (-).')
    .argument('<file>', 'FILE.yaml, FILE.yml, FILE.json, or - for standard input (YAML or JSON)')
    .action(async (path: string, _options: unknown, command: Command) => {
      const stdin = path === '-'
      const file = stdin ? 'standard input' : path
      let text: string
      try {
        text = stdin ? await readAll(process.stdin) : await readFile(file, 'utf8')
      } catch (err) {
        throw new CliError(
          `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        )
      }
      // Checked here first so a bad file is reported with its own field names and nothing is saved.
      let parsed: Definition[]
      try {
        parsed = parseDefinitionsDocument(text, file, stdin ? 'yaml' : 'by-extension')
      } catch (err) {
        const message = (err as Error).message
        throw new CliError(message.startsWith(file) ? message : `${file}: ${message}`)
      }
      const client = clientOf(command)
      for (const definition of parsed) {
        await client.request('PUT', '/registry-svc/definition', { definition })
        print(`saved definition ${definition.id}\n`)
      }
    })
  definitions
    .command('delete')
    .description('Delete a definition by id.')
    .argument('<id>', 'definition id')
    .action(async (id: string, _options: unknown, command: Command) => {
      await clientOf(command).request('DELETE', `/registry-svc/definition/${encodeURIComponent(id)}`)
      print(`deleted definition ${id}\n`)
    })
  return definitions
}
