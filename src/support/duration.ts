import ms from 'ms'

/**
 * A duration as people write it (`500ms`, `10s`, `5m`, `1h`; a bare number is ms) in whole
 * milliseconds, or undefined when the text is not one (or is negative).
 */
export function parseDurationMs(text: string): number | undefined {
  const n = /^\d+$/.test(text) ? Number(text) : ms(text as ms.StringValue)
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? Math.round(n) : undefined
}
