import { Command, CommanderError, Option } from 'commander'
import packageJson from '../../package.json' with { type: 'json' }
import { type Agent, startAgent } from '../agent/agent.ts'
import { type AgentConfig, ConfigError, loadConfig, OPTIONS } from '../agent/config.ts'
import { TokensFileError } from '../http/index.ts'
import { createLogger } from '../support/logger.ts'
import { CliError } from './client.ts'
import { DEFAULT_URL } from './commands/context.ts'
import { definitionsCommand } from './commands/definitions.ts'
import { instancesCommand } from './commands/instances.ts'
import { nodesCommand } from './commands/nodes.ts'

/** Builds the `p2p-registry` command line. Returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('p2p-registry')
    .description('Service registry with no central server: one agent per machine, gossiping over libp2p.')
    .version(packageJson.version, '-V, --version', 'print the version')
    .option('--url <url>', `agent to talk to [env OB_URL, default: ${DEFAULT_URL}]`)
    .option('--token <token>', 'API token for changes [env OB_API_TOKEN]')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')

  let exitCode = 0
  const agent = program
    .command('agent')
    .description('Run an agent: the local replica, peer-to-peer sync and the HTTP API.')
  const attributes = OPTIONS.map((spec) => {
    const option = new Option(
      `${spec.flag} <value>`,
      `${spec.description} [env ${spec.env}, default: ${spec.default}]`,
    )
    agent.addOption(option)
    return [spec.key, option.attributeName()] as const
  })
  agent.action(async (parsed: Record<string, string | undefined>) => {
    const flags: Partial<Record<keyof AgentConfig, string>> = {}
    for (const [key, attribute] of attributes) flags[key] = parsed[attribute]
    exitCode = await runAgent(flags)
  })

  for (const command of [nodesCommand(), instancesCommand(), definitionsCommand()]) {
    // Subcommands share the program's error handling (exit codes instead of process.exit).
    for (const sub of [command, ...command.commands])
      sub.exitOverride().showHelpAfterError('(add --help for usage)')
    program.addCommand(command)
  }

  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode
    if (err instanceof CliError || (err as Error).name === 'ValidationError') {
      process.stderr.write(`p2p-registry: ${(err as Error).message}\n`)
      return 1
    }
    throw err
  }
  return exitCode
}

/** How long a graceful stop may take before the process exits anyway. */
const STOP_TIMEOUT_MS = 8000

/** The agent's dependencies (libp2p) use Node 22 APIs; the CLI's other commands run on older Nodes too. */
const AGENT_MIN_NODE_MAJOR = 22

async function runAgent(flags: Partial<Record<keyof AgentConfig, string>>): Promise<number> {
  const major = Number(process.versions.node.split('.')[0])
  if (major < AGENT_MIN_NODE_MAJOR) {
    process.stderr.write(
      `p2p-registry agent: needs Node.js ${AGENT_MIN_NODE_MAJOR} or newer, this is ${process.version}; ` +
        "`npm start` and `npx p2p-registry agent` run the project's own Node (npm install fetches it)\n",
    )
    return 2
  }
  let config: AgentConfig
  try {
    config = loadConfig(flags, process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`p2p-registry agent: ${err.message}\n`)
      return 2
    }
    throw err
  }
  const log = await createLogger(config.logLevel)
  // Signals are handled from the start: one during start-up stops the agent once it is up.
  const signalled = Promise.withResolvers<NodeJS.Signals>()
  process.once('SIGINT', signalled.resolve)
  process.once('SIGTERM', signalled.resolve)
  let agent: Agent
  try {
    agent = await startAgent(config, log)
  } catch (err) {
    if (err instanceof TokensFileError || err instanceof ConfigError) {
      process.stderr.write(`p2p-registry agent: ${err.message}\n`)
      return 2
    }
    throw err
  }
  // SIGHUP: read the tokens file again (a file change is picked up by itself too).
  const reload = () => void agent.reloadTokens()
  process.on('SIGHUP', reload)
  const signal = await signalled.promise
  process.off('SIGHUP', reload)
  log.info({ signal }, 'shutting down')
  // Every acknowledged write is already in LevelDB, so a stop that hangs (a peer that never closes its
  // streams, a handle left open) may be cut short: supervisors and scripts/cluster expect the process
  // gone in seconds. Unref'd, the timer fires only if something else keeps the process up.
  setTimeout(() => {
    log.error({ timeoutMs: STOP_TIMEOUT_MS }, 'agent did not exit in time after the signal; exiting')
    process.exit(1)
  }, STOP_TIMEOUT_MS).unref()
  await agent.stop()
  return 0
}
