import { type Logger, pino } from 'pino'

export type { Logger }

/**
 * One JSON line per event on stdout (what log collectors want); in a terminal, the same events
 * pretty-printed by pino-pretty so a person can read them.
 */
export function createLogger(level: string, pretty = process.stdout.isTTY === true): Logger {
  if (!pretty) return pino({ level, base: { pid: process.pid } })
  return pino({
    level,
    transport: {
      target: 'pino-pretty',
      options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
    },
  })
}
