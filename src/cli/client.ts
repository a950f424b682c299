import { createParser } from 'eventsource-parser'

/** A thin client of an agent's HTTP API, for the CLI. */
export class CliError extends Error {
  override name = 'CliError'
}

export interface ClientOptions {
  url: string
  token: string | undefined
}

export class RegistryClient {
  readonly #base: string
  readonly #token: string | undefined

  constructor(options: ClientOptions) {
    if (!URL.canParse(options.url)) throw new CliError(`--url must be an absolute URL, got "${options.url}"`)
    this.#base = options.url.replace(/\/+$/, '')
    this.#token = options.token
  }

  /**
   * Follows a watch stream (`…/watch`): calls `onEvent` with each event's parsed data until the stream
   * ends or `signal` aborts. Throws CliError when the agent cannot be reached or refuses.
   */
  async watch(path: string, onEvent: (data: unknown) => void, signal?: AbortSignal): Promise<void> {
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (this.#token) headers.authorization = `Bearer ${this.#token}`
    let response: Response
    try {
      response = await fetch(`${this.#base}${path}`, { headers, ...(signal ? { signal } : {}) })
    } catch (err) {
      if (signal?.aborted) return
      throw this.#unreachable(err)
    }
    if (!response.ok || response.body === null) throw refusal(response.status, await response.text())
    const parser = createParser({ onEvent: (event) => onEvent(JSON.parse(event.data)) })
    const decoder = new TextDecoder()
    try {
      for await (const chunk of response.body)
        parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }))
    } catch (err) {
      if (!signal?.aborted) throw new CliError(`the watch stream broke: ${(err as Error).message}`)
    }
  }

  /** Sends a request; resolves with the parsed JSON body (undefined for 204), throws CliError otherwise. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {}
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (this.#token) headers.authorization = `Bearer ${this.#token}`
    let response: Response
    try {
      response = await fetch(`${this.#base}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      })
    } catch (err) {
      throw this.#unreachable(err)
    }
    const text = await response.text()
    if (!response.ok) throw refusal(response.status, text)
    return (text === '' ? undefined : JSON.parse(text)) as T
  }

  #unreachable(err: unknown): CliError {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause
    return new CliError(
      `cannot reach the agent at ${this.#base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
    )
  }
}

/** An error answer as one line: the agent's `{"error"}` text (else the body as is) and the status. */
function refusal(status: number, text: string): CliError {
  let message = text
  try {
    message = (JSON.parse(text) as { error?: string }).error ?? text
  } catch {
    // Not JSON: show the text as is.
  }
  return new CliError(`${message} (HTTP ${status})`)
}
