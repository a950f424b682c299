import { type Logger, pino } from 'pino'

export type { Logger }

/**
 * One JSON line per event on stdout (what log collectors want); in a terminal, the same events
 * pretty-printed by pino-pretty so a person can read them.
 *
 * pino-pretty is loaded only for a terminal, and runs in this thread: as a pino transport it would run
 * in a worker thread, a second V8 instance that cost an agent in a terminal 16 MB of RSS (126 MB
 * instead of 110 MB). A terminal prints little, so formatting here costs the event loop next to nothing.
 * Imported on first use: the bundle evaluates it only then, so an agent logging JSON never loads it.
 */
export async function createLogger(level: string, pretty = process.stdout.isTTY === true): Promise<Logger> {
  if (!pretty) return pino({ level, base: { pid: process.pid } })
  const { build } = await import('pino-pretty')
  return pino(
    { level },
    build({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', sync: true }),
  )
}
