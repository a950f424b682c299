import type { Command } from 'commander'
import { RegistryClient } from '../client.ts'

export const DEFAULT_URL = 'http://127.0.0.1:11337'

/** The client for the agent named by the global --url/--token options (or OB_URL/OB_API_TOKEN). */
export function clientOf(command: Command): RegistryClient {
  const options = command.optsWithGlobals<{ url?: string; token?: string }>()
  return new RegistryClient({
    url: options.url ?? process.env.OB_URL ?? DEFAULT_URL,
    token: options.token ?? process.env.OB_API_TOKEN,
  })
}

export function print(text: string): void {
  process.stdout.write(text)
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
}
