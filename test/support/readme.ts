import { readFile } from 'node:fs/promises'

/**
 * The rows of the first Markdown table after `marker` in README.md, as arrays of trimmed cells
 * (header and separator rows left out).
 */
export async function readmeTable(marker: string): Promise<string[][]> {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
  const at = readme.indexOf(marker)
  if (at === -1) throw new Error(`README.md has no "${marker}"`)
  const lines = readme.slice(at).split('\n')
  const start = lines.findIndex((line) => line.startsWith('|'))
  const table: string[] = []
  for (const line of lines.slice(start)) {
    if (!line.startsWith('|')) break
    table.push(line)
  }
  return table.slice(2).map((row) =>
    row
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim()),
  )
}
