import { LEAF_BITS } from '../../model/wire.ts'
import { type DigestTree, LEAF_COUNT } from '../../replica/digest.ts'
import { encodeDigest } from './messages.ts'

/** Every leaf, as one range: what is exchanged when the tree walk is skipped. */
export const ALL_LEAVES: Array<[number, number]> = [[0, LEAF_COUNT]]

/**
 * Digests of the nodes at `level` under each parent at `parentLevel`, parents in order, children in
 * order: `2^(level - parentLevel)` per parent.
 */
export function childDigests(
  tree: DigestTree,
  parentLevel: number,
  parents: readonly number[],
  level: number,
): string[] {
  const fanout = 2 ** (level - parentLevel)
  const out: string[] = []
  for (const parent of parents) {
    for (let i = parent * fanout; i < (parent + 1) * fanout; i++) out.push(encodeDigest(tree.node(level, i)))
  }
  return out
}

/** Indices (at `level`) of the children whose digest in `theirs` differs from ours, ascending. */
export function differingChildren(
  tree: DigestTree,
  parentLevel: number,
  parents: readonly number[],
  level: number,
  theirs: readonly string[],
): number[] {
  const ours = childDigests(tree, parentLevel, parents, level)
  const fanout = 2 ** (level - parentLevel)
  const out: number[] = []
  for (let k = 0; k < ours.length; k++) {
    if (ours[k] !== theirs[k]) out.push(parents[Math.floor(k / fanout)]! * fanout + (k % fanout))
  }
  return out
}

/** Ascending leaf indices as sorted, disjoint, non-touching `[from, to)` ranges. */
export function leavesToRanges(leaves: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = []
  for (const leaf of leaves) {
    const last = out[out.length - 1]
    if (last && last[1] === leaf) last[1] = leaf + 1
    else out.push([leaf, leaf + 1])
  }
  return out
}

/**
 * Whether to skip the tree walk and exchange every leaf. When one side holds less than 1/64 of what
 * the other holds (empty, or a late joiner with only its own node record), the larger side's entries
 * fill far more leaves than the smaller side can match: nearly every leaf differs, and walking the
 * tree would cost three round trips and up to 4,096 leaf digests to learn that.
 */
export function shouldExchangeAll(ours: number, theirs: number): boolean {
  return Math.min(ours, theirs) * 64 < Math.max(ours, theirs) || Math.min(ours, theirs) === 0
}

/** Levels visited by the walk below the root: 4, 8, 12 for 12 leaf bits and 4 levels per round. */
export function walkLevels(levelsPerRound: number): number[] {
  const out: number[] = []
  for (let level = levelsPerRound; level < LEAF_BITS; level += levelsPerRound) out.push(level)
  out.push(LEAF_BITS)
  return out
}
