import { createHash, timingSafeEqual } from 'node:crypto'
import { type FSWatcher, watch } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { type Static, Type } from '@sinclair/typebox'
import { parse as parseYaml } from 'yaml'
import { compileChecker } from '../model/check.ts'
import type { ValidationError } from '../model/index.ts'
import { IdentifierSchema } from '../model/primitives.ts'
import type { Logger } from '../support/logger.ts'

/**
 * API tokens and what each may do (DESIGN.md §7.3):
 * - `admin`: everything;
 * - `service` with a `slug`: registers, renews and removes instances of that slug only (a registration
 *   without a slug takes the token's), and reads;
 * - `reader`: reads (which need a token only with `OB_READS_NEED_TOKEN`).
 */
export const ROLES = ['admin', 'service', 'reader'] as const
export type Role = (typeof ROLES)[number]

/** What a request's token grants. */
export interface Grant {
  role: Role
  /** The service's slug (role `service` only). */
  slug?: string
}

const HEX_SHA256 = '^[0-9a-fA-F]{64}$'
const EntrySchema = Type.Object(
  {
    token: Type.Optional(
      Type.String({ minLength: 16, description: 'The token itself (16 characters or more)' }),
    ),
    sha256: Type.Optional(Type.String({ pattern: HEX_SHA256, description: 'Hex SHA-256 of the token' })),
    role: Type.Union(ROLES.map((r) => Type.Literal(r))),
    slug: Type.Optional(IdentifierSchema),
  },
  { additionalProperties: false },
)
const FileSchema = Type.Array(EntrySchema)
type Entry = Static<typeof EntrySchema>
const checkFile = compileChecker(FileSchema)

/** A tokens file that cannot be used, naming the file and the entry at fault. */
export class TokensFileError extends Error {
  override readonly name = 'TokensFileError'
}

interface Known {
  digest: Buffer
  grant: Grant
}

/**
 * The tokens an agent accepts: from `OB_API_TOKEN` (one admin token) and `OB_API_TOKENS_FILE`. Tokens
 * are kept and compared as SHA-256 digests: every known digest is compared with `timingSafeEqual`, so
 * the time a lookup takes says nothing about which token, or which part of it, matched.
 */
export class Tokens {
  readonly #known: Known[]

  private constructor(known: Known[]) {
    this.#known = known
  }

  /** No tokens: every request is allowed. */
  static none(): Tokens {
    return new Tokens([])
  }

  /** `adminToken` (`OB_API_TOKEN`) and the entries of a tokens file's text. Throws `TokensFileError`. */
  static from(adminToken: string | undefined, fileText?: string, fileName = 'the tokens file'): Tokens {
    const known: Known[] = []
    if (adminToken !== undefined && adminToken !== '')
      known.push({ digest: sha256(adminToken), grant: { role: 'admin' } })
    if (fileText !== undefined) for (const entry of parseTokensFile(fileText, fileName)) known.push(entry)
    return new Tokens(known)
  }

  /** Reads `path` (YAML or JSON) with `adminToken`. Throws `TokensFileError`. */
  static async load(adminToken: string | undefined, path: string | undefined): Promise<Tokens> {
    if (path === undefined) return Tokens.from(adminToken)
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      throw new TokensFileError(`cannot read OB_API_TOKENS_FILE ${path}: ${(err as Error).message}`)
    }
    return Tokens.from(adminToken, text, path)
  }

  /** Whether any token is configured (without one, nothing needs a token). */
  get enabled(): boolean {
    return this.#known.length > 0
  }

  get size(): number {
    return this.#known.length
  }

  /** The grant of a token, or undefined for a token nobody configured. */
  grantOf(token: string): Grant | undefined {
    const digest = sha256(token)
    let found: Grant | undefined
    for (const known of this.#known) {
      // Every entry is compared, matched or not.
      if (timingSafeEqual(known.digest, digest) && found === undefined) found = known.grant
    }
    return found
  }
}

function parseTokensFile(text: string, fileName: string): Known[] {
  let data: unknown
  try {
    data = parseYaml(text)
  } catch (err) {
    throw new TokensFileError(`${fileName} is not YAML or JSON: ${(err as Error).message}`)
  }
  let entries: Entry[]
  try {
    entries = checkFile(data ?? [], 'tokens') as Entry[]
  } catch (err) {
    throw new TokensFileError(`${fileName}: ${(err as ValidationError).message}`)
  }
  return entries.map((entry, i): Known => {
    const where = `${fileName}: tokens[${i}]`
    if ((entry.token === undefined) === (entry.sha256 === undefined)) {
      throw new TokensFileError(`${where} needs exactly one of "token" and "sha256"`)
    }
    if (entry.role === 'service' && entry.slug === undefined) {
      throw new TokensFileError(`${where} has role service and needs the "slug" of its service`)
    }
    if (entry.role !== 'service' && entry.slug !== undefined) {
      throw new TokensFileError(`${where} has a slug, which only a service token takes`)
    }
    const digest = entry.token !== undefined ? sha256(entry.token) : Buffer.from(entry.sha256!, 'hex')
    const grant: Grant =
      entry.role === 'service' ? { role: 'service', slug: entry.slug as string } : { role: entry.role }
    return { digest, grant }
  })
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest()
}

/** The tokens in force, reloadable: what the HTTP app reads on every request. */
export interface TokenSource {
  current(): Tokens
}

/**
 * Keeps the tokens of `OB_API_TOKENS_FILE` current: `reload` reads the file again (the agent calls it
 * on SIGHUP), and a change of the file (written in place or replaced, as editors and secret managers
 * do) reloads it within a moment. A file that no longer parses leaves the tokens in force as they were,
 * and says why in the log.
 */
export class ReloadingTokens implements TokenSource {
  readonly #adminToken: string | undefined
  readonly #path: string
  readonly #log: Logger
  #tokens: Tokens
  #watcher: FSWatcher | undefined
  #debounce: ReturnType<typeof setTimeout> | undefined

  private constructor(adminToken: string | undefined, path: string, tokens: Tokens, log: Logger) {
    this.#adminToken = adminToken
    this.#path = path
    this.#tokens = tokens
    this.#log = log
  }

  /** Loads the file (throws `TokensFileError` when it cannot be used) and starts watching it. */
  static async open(adminToken: string | undefined, path: string, log: Logger): Promise<ReloadingTokens> {
    const reloading = new ReloadingTokens(adminToken, path, await Tokens.load(adminToken, path), log)
    reloading.#watch()
    return reloading
  }

  current(): Tokens {
    return this.#tokens
  }

  /** Reads the file again; resolves with whether the new tokens are in force. */
  async reload(): Promise<boolean> {
    try {
      this.#tokens = await Tokens.load(this.#adminToken, this.#path)
      this.#log.info({ path: this.#path, tokens: this.#tokens.size }, 'API tokens reloaded')
      return true
    } catch (err) {
      this.#log.error({ path: this.#path, err }, 'API tokens file not reloaded; the tokens in force stay')
      return false
    }
  }

  close(): void {
    this.#watcher?.close()
    clearTimeout(this.#debounce)
  }

  #watch(): void {
    // The directory, not the file: a replaced file (rename over it) is a new inode the file watch misses.
    const name = basename(this.#path)
    this.#watcher = watch(dirname(this.#path), (_event, changed) => {
      if (changed !== null && changed !== name) return
      clearTimeout(this.#debounce)
      this.#debounce = setTimeout(() => void this.reload(), 100)
    })
    this.#watcher.on('error', (err) =>
      this.#log.error({ err, path: this.#path }, 'cannot watch the API tokens file'),
    )
    this.#watcher.unref()
  }
}
