import type { Logger } from '../support/logger.ts'
import type { Startable } from '../support/startable.ts'
import type { Replica } from './replica.ts'

/** How often tombstones past the grace period are purged. */
export const DEFAULT_PURGE_INTERVAL_MS = 60 * 60 * 1000

/** Purges the replica's expired tombstones every `intervalMs` (a unit: see `agent/units.ts`). */
export class TombstonePurger implements Startable {
  readonly #replica: Pick<Replica, 'purgeTombstones'>
  readonly #log: Logger
  readonly #intervalMs: number
  #timer: NodeJS.Timeout | undefined

  constructor(
    init: { intervalMs?: number },
    components: { replica: Pick<Replica, 'purgeTombstones'>; log: Logger },
  ) {
    this.#replica = components.replica
    this.#log = components.log
    this.#intervalMs = init.intervalMs ?? DEFAULT_PURGE_INTERVAL_MS
  }

  get isStarted(): boolean {
    return this.#timer !== undefined
  }

  start(): void {
    this.#timer ??= setInterval(() => {
      this.#replica.purgeTombstones().then(
        (purged) => purged > 0 && this.#log.info({ purged }, 'purged expired tombstones'),
        (err: unknown) => this.#log.error({ err }, 'tombstone purge failed'),
      )
    }, this.#intervalMs)
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }
}
