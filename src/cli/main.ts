import { Command, CommanderError, Option } from 'commander'
import { startAgent } from '../agent/agent.ts'
import { type AgentConfig, ConfigError, loadConfig, OPTIONS } from '../agent/config.ts'
import { createLogger } from '../agent/logger.ts'

/** Builds the `p2p-registry` command line. Returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('p2p-registry')
    .description('Service registry with no central server: one agent per machine, gossiping over libp2p.')
    .exitOverride()
    .showHelpAfterError()

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

  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode
    throw err
  }
  return exitCode
}

async function runAgent(flags: Partial<Record<keyof AgentConfig, string>>): Promise<number> {
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
  const log = createLogger(config.logLevel)
  const agent = await startAgent(config, log)
  const stopped = Promise.withResolvers<void>()
  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'shutting down')
    agent.stop().then(stopped.resolve, stopped.reject)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  await stopped.promise
  return 0
}
