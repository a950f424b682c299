import { useEffect, useState } from 'preact/hooks'

/** Where a stream stands: live, or lost and being reconnected by the browser. */
export type StreamState = 'connecting' | 'live' | 'lost'

/**
 * Follows one of the agent's watch streams with the browser's EventSource, which reconnects by itself
 * and resumes with Last-Event-ID. `select` picks the list out of each event's answer.
 */
export function useWatch<T>(
  path: string | undefined,
  event: string,
  select: (answer: Record<string, unknown>) => T,
): { data: T | undefined; state: StreamState } {
  const [data, setData] = useState<T | undefined>(undefined)
  const [state, setState] = useState<StreamState>('connecting')
  useEffect(() => {
    if (path === undefined) return
    setData(undefined)
    setState('connecting')
    const source = new EventSource(path)
    source.addEventListener(event, (message) => {
      setData(select(JSON.parse((message as MessageEvent<string>).data) as Record<string, unknown>))
      setState('live')
    })
    source.onopen = () => setState('live')
    source.onerror = () => setState('lost')
    return () => source.close()
    // select is a pure function of the answer, fixed per call site
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [path, event])
  return { data, state }
}

/** The current time, ticking every second (for "8s ago"). */
export function useNow(): number {
  const [now, setNow] = useState(Date.now())
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000)
    return () => clearInterval(timer)
  }, [])
  return now
}

/** Calls `load` now and every `everyMs`, keeping its last result. */
export function usePoll<T>(load: () => Promise<T>, everyMs: number): T | undefined {
  const [value, setValue] = useState<T | undefined>(undefined)
  useEffect(() => {
    let stopped = false
    const run = () =>
      load().then(
        (v) => !stopped && setValue(v),
        () => undefined,
      )
    void run()
    const timer = setInterval(run, everyMs)
    return () => {
      stopped = true
      clearInterval(timer)
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [everyMs])
  return value
}
