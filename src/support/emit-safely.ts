import type { EventEmitter } from 'node:events'
import type { Logger } from './logger.ts'

/**
 * Emits `event` without letting a listener's exception escape. The units emit inside timers, stream
 * handlers and the replica's change event, where a throw would crash the agent or fail a write; the
 * exception is logged instead, as "a `unit` listener threw".
 */
export function emitSafely(emitter: object, log: Logger, unit: string, event: string, args: unknown[]): void {
  try {
    ;(emitter as EventEmitter).emit(event, ...args)
  } catch (err) {
    log.error({ err, event }, `a ${unit} listener threw`)
  }
}
