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
 * it and what `detail` tells of its state: a hook that times out then shows which step hung. Past
 * `giveUpAfterMs` it stops waiting (the step goes on in the background) so that one hung teardown does
 * not fail the tests that passed; the warnings stay in the log.
 */
export async function namedStep(
  name: string,
  step: () => Promise<unknown>,
  {
    warnAfterMs = 10_000,
    giveUpAfterMs = Number.POSITIVE_INFINITY,
    detail = () => '',
  }: { warnAfterMs?: number; giveUpAfterMs?: number; detail?: () => string } = {},
): Promise<void> {
  const started = Date.now()
  const timer = setInterval(
    () => console.warn(`[teardown] ${name} still running after ${Date.now() - started} ms ${detail()}`),
    warnAfterMs,
  )
  let giveUp: ReturnType<typeof setTimeout> | undefined
  try {
    await Promise.race([
      step(),
      new Promise<void>((resolve) => {
        if (Number.isFinite(giveUpAfterMs)) giveUp = setTimeout(resolve, giveUpAfterMs)
      }),
    ])
  } finally {
    clearInterval(timer)
    clearTimeout(giveUp)
  }
}
