/**
 * The lifecycle every unit of an agent follows (gossip, anti-entropy, beat channel, failure detector,
 * heartbeat, instance prober, discovery). `agent/units.ts` builds them and keeps their start order.
 */
export interface Startable {
  /** Starts the unit's handlers and timers. Calling it again while started does nothing. */
  start(): void | Promise<void>
  /** Cancels every timer and stream the unit started and waits for them. Calling it again does nothing. */
  stop(): void | Promise<void>
  /** True from `start()` until `stop()`. */
  readonly isStarted: boolean
}

/** Starts `units` one after the other, each once the one before is up. */
export async function startInOrder(units: readonly Startable[]): Promise<void> {
  for (const unit of units) await unit.start()
}

/** Stops `units` in reverse order, each once the one after it has stopped. */
export async function stopInReverse(units: readonly Startable[]): Promise<void> {
  for (const unit of [...units].reverse()) await unit.stop()
}
