/**
 * `npm run lint` step: tests and scripts may name only addresses on this machine as targets.
 *
 * Agents probe every instance registered on them and dial the multiaddrs they learn, so an address
 * such as a private 10.x address in a test sends real packets to a network that is not ours. Allowed:
 * loopback (127.0.0.0/8), the namespace clusters' hosts (198.18.0.0/15), and 0.0.0.0 (a listen
 * address). A test that only parses an address, and never hands it to an agent, may go on ALLOWED
 * below, but loopback literals parse just as well.
 *
 *   node scripts/lint-addresses.ts [FILE...]     (default: every file under test/ and scripts/)
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const ROOT = join(import.meta.dirname, '..')

/** Files that may name such addresses: this one (its patterns). Parse-only tests use loopback too. */
const ALLOWED = ['scripts/lint-addresses.ts']

// An IPv4 literal where it names a target: after a URL scheme, in a /ip4/ multiaddr, as an `ip`
// field, or host:port. The first octet may be followed by a template hole (`10.${n}`).
const TARGETS = [
  /[a-z][a-z0-9+.-]*:\/\/(\d{1,3})\.(\d{1,3}|\$\{)/gi,
  /\/ip4\/(\d{1,3})\.(\d{1,3}|\$\{)/g,
  /\bip:\s*['"`](\d{1,3})\.(\d{1,3}|\$\{)/g,
  /['"`](\d{1,3})\.(\d{1,3}|\$\{)[^'"`\s]*:\d+/g,
]

function onThisMachine(first: number, second: string): boolean {
  if (first === 127) return true
  if (first === 198 && (second === '18' || second === '19' || second === '${')) return true
  return first === 0
}

function offMachineTargets(text: string): Map<number, string> {
  const lines = text.split('\n')
  const found = new Map<number, string>()
  for (const pattern of TARGETS) {
    for (const match of text.matchAll(pattern)) {
      if (onThisMachine(Number(match[1]), match[2]!)) continue
      const line = text.slice(0, match.index).split('\n').length
      found.set(line, lines[line - 1]!.trim())
    }
  }
  return new Map([...found].sort(([a], [b]) => a - b))
}

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) yield* files(path)
    else yield path
  }
}

const paths =
  process.argv.length > 2
    ? process.argv.slice(2)
    : [...files(join(ROOT, 'test')), ...files(join(ROOT, 'scripts'))]
let failures = 0
for (const path of paths) {
  const name = relative(ROOT, path)
  if (ALLOWED.some((allowed) => name.startsWith(allowed))) continue
  for (const [line, source] of offMachineTargets(readFileSync(path, 'utf8'))) {
    failures++
    console.error(`${name}:${line}: names an address off this machine: ${source}`)
  }
}
if (failures > 0) {
  console.error(
    `\n${failures} address(es) off this machine. Agents probe what is registered on them and dial what they learn, ` +
      'so tests and scripts may only name loopback (127.x.y.z) or their own namespace hosts (198.18.0.0/15). ' +
      'A test that only parses an address, and never hands it to an agent, goes on ALLOWED in scripts/lint-addresses.ts.',
  )
  process.exit(1)
}
