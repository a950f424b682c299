import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../src/support/logger.ts'

const destination = (log: pino.Logger) => (log as unknown as Record<symbol, object>)[pino.symbols.streamSym]

describe('createLogger', async () => {
  it('pretty-prints in this thread: no transport worker (a second V8 instance, +16 MB RSS)', async () => {
    const log = await createLogger('silent', true)
    expect(log.level).toBe('silent')
    expect(destination(log)?.constructor.name).not.toBe('ThreadStream')
  })

  it('writes JSON lines without pino-pretty when not in a terminal', async () => {
    const log = await createLogger('warn', false)
    expect(log.level).toBe('warn')
    expect(destination(log)?.constructor.name).toBe('SonicBoom')
  })
})
