/** The agent answered with an error: its HTTP status and the `{"error"}` text, which names the problem. */
export class RegistryError extends Error {
  override readonly name = 'RegistryError'
  readonly status: number

  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

/** The agent (or an instance, for `Service.fetch`) could not be reached: refused, reset, timed out. */
export class ConnectionError extends Error {
  override readonly name = 'ConnectionError'
}

/** `Service.fetch` tried every attempt it may and none answered without a 5xx or a connection error. */
export class NoInstanceError extends Error {
  override readonly name = 'NoInstanceError'
}
