/**
 * Waits until `condition` holds, checking every `everyMs`, or fails after `timeoutMs` with `what` and
 * the last value seen. Tests wait on outcomes this way, never on a fixed sleep.
 */
export async function waitFor<T>(
  what: string,
  condition: () => T | Promise<T>,
  { timeoutMs = 10_000, everyMs = 20 }: { timeoutMs?: number; everyMs?: number } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  let last: T | undefined
  for (;;) {
    last = await condition()
    if (last) return last as NonNullable<T>
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/**
 * Runs `step` (a teardown), and if it is still running after `warnAfterMs`, says so on stderr naming
 * it: a hook that times out then shows which step hung (a CI flake left no other trace).
 */
export async function namedStep<T>(name: string, step: () => Promise<T>, warnAfterMs = 10_000): Promise<T> {
  const started = Date.now()
  const timer = setInterval(
    () => console.warn(`[teardown] ${name} still running after ${Date.now() - started} ms`),
    warnAfterMs,
  )
  try {
    return await step()
  } finally {
    clearInterval(timer)
  }
}
