import { type Logger, pino } from 'pino'

export type { Logger }

/** One JSON line per event on stdout (what log collectors want). */
export function createLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid } })
}
