/**
 * Readable field paths for error messages, shared by the model's validators and the HTTP layer:
 * JSON-pointer segments `/apiSpecs/0/metadata/a.b` under root `definition` read
 * `definition.apiSpecs[0].metadata["a.b"]`.
 */

/** The segments of a JSON pointer (`~1` and `~0` unescaped). */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '') return []
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
}

/** A name from untrusted input, quoted and shortened so a huge one cannot make a huge message. */
export function quoteName(name: string): string {
  return JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name)
}

/**
 * Joins segments onto `root`, reading `data` alongside to tell an array index from an object key.
 * With an empty root the path starts at the first segment.
 */
export function fieldPath(root: string, segments: readonly string[], data: unknown): string {
  let out = root
  let cur = data
  for (const segment of segments) {
    if (Array.isArray(cur)) out += `[${segment}]`
    else if (/^[A-Za-z_$][\w$]{0,63}$/.test(segment)) out += out === '' ? segment : `.${segment}`
    else out += `[${quoteName(segment)}]`
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[segment] : undefined
  }
  return out
}
