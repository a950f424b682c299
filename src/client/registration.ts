import type { RegistryClient } from './api.ts'
import { RegistryError } from './errors.ts'
import type { Instance, Registration } from './types.ts'

export interface SelfRegistrationOptions {
  /** Deregister on SIGTERM and SIGINT (Node only), then let the signal take its course. @default false */
  deregisterOnSignals?: boolean
}

/**
 * An instance this process registered for itself. With a ttl check it renews itself every third of
 * the ttl, and registers again when the agent no longer knows it (deregistered, or its node reaped
 * while cut off). `close()` stops renewing and deregisters it.
 */
export class SelfRegistration {
  readonly #client: RegistryClient
  readonly #registration: Registration
  #instance: Instance
  #timer: ReturnType<typeof setInterval> | undefined
  #closed: Promise<void> | undefined
  readonly #onSignal: ((signal: NodeJS.Signals) => void) | undefined

  private constructor(
    client: RegistryClient,
    registration: Registration,
    instance: Instance,
    options: SelfRegistrationOptions,
  ) {
    this.#client = client
    this.#registration = registration
    this.#instance = instance
    const ttlMs = registration.check?.type === 'ttl' ? (registration.check.ttlMs ?? 30_000) : undefined
    if (ttlMs !== undefined) {
      this.#timer = setInterval(() => void this.#renew(), Math.max(100, Math.floor(ttlMs / 3)))
      ;(this.#timer as { unref?: () => void }).unref?.()
    }
    if (options.deregisterOnSignals && typeof process !== 'undefined') {
      this.#onSignal = (signal) => {
        void this.close().finally(() => process.kill(process.pid, signal))
      }
      process.once('SIGTERM', this.#onSignal)
      process.once('SIGINT', this.#onSignal)
    }
  }

  static async register(
    client: RegistryClient,
    registration: Registration,
    options: SelfRegistrationOptions = {},
  ): Promise<SelfRegistration> {
    const instance = await client.register(registration)
    const self = new SelfRegistration(client, registration, instance, options)
    if (registration.check?.type === 'ttl') await self.#renew()
    return self
  }

  /** The instance as registered. */
  get instance(): Instance {
    return this.#instance
  }

  /** Stops renewing and deregisters the instance. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#timer)
      if (this.#onSignal) {
        process.off('SIGTERM', this.#onSignal)
        process.off('SIGINT', this.#onSignal)
      }
      await this.#client.remove(this.#instance.id).catch((err: unknown) => {
        if (!(err instanceof RegistryError && err.status === 404)) throw err
      })
    })()
    return this.#closed
  }

  async #renew(): Promise<void> {
    if (this.#closed) return
    try {
      await this.#client.heartbeat(this.#instance.id)
    } catch (err) {
      // Gone from the registry (deregistered while we could not renew, or reaped): register again.
      if (err instanceof RegistryError && err.status === 404 && !this.#closed) {
        this.#instance = await this.#client.register(this.#registration).catch(() => this.#instance)
      }
    }
  }
}
