import type { Replica } from '../../replica/replica.ts'
import type { Logger } from '../../support/logger.ts'

/** Replica metadata key: when this node last finished an anti-entropy session, ms since the epoch. */
export const LAST_CONTACT_META = 'lastContactMs'

/**
 * The stale-node rule (docs/replication.md, Stale nodes). A node whose last contact with the cluster is older than the
 * tombstone grace period may hold entities that were deleted elsewhere and whose tombstones have been
 * purged since: pushing its state back would resurrect them. Such a node drops its replica and pulls.
 * A node that never had contact (no `lastContactMs`) is not stale: there is no cluster state it missed.
 */
export function isStale(lastContactMs: number | undefined, nowMs: number, tombstoneGraceMs: number): boolean {
  return lastContactMs !== undefined && nowMs - lastContactMs > tombstoneGraceMs
}

/** Reads `lastContactMs` from the replica metadata; undefined when absent or unreadable. */
export async function readLastContact(replica: Pick<Replica, 'getMeta'>): Promise<number | undefined> {
  const raw = await replica.getMeta(LAST_CONTACT_META)
  if (raw === undefined) return undefined
  const ms = Number(raw)
  return Number.isSafeInteger(ms) && ms >= 0 ? ms : undefined
}

export interface StaleCheck {
  stale: boolean
  lastContactMs: number | undefined
}

/** Reads the last contact and applies `isStale` at `nowMs`. */
export async function checkStale(
  replica: Pick<Replica, 'getMeta' | 'tombstoneGraceMs'>,
  nowMs: number,
): Promise<StaleCheck> {
  const lastContactMs = await readLastContact(replica)
  return { stale: isStale(lastContactMs, nowMs, replica.tombstoneGraceMs), lastContactMs }
}

/** `lastContactMs` is written at most this often, ms (it only has to be accurate to the grace period). */
const CONTACT_WRITE_INTERVAL_MS = 5_000

export interface StaleNodeGuardInit {
  replica: Pick<Replica, 'getMeta' | 'putMeta' | 'clear' | 'tombstoneGraceMs'>
  log: Logger
  now: () => number
  /** Called when the replica is dropped (for the stats). */
  onReset: () => void
}

/**
 * Applies the stale-node rule around sessions. Before each session, until one succeeds in this
 * process, it checks `lastContactMs`; a stale replica is dropped (once) and sessions only pull until
 * one succeeds. After each successful session it records the contact time.
 */
export class StaleNodeGuard {
  readonly #init: StaleNodeGuardInit
  /** A session has succeeded in this process: the rule no longer applies. */
  #contacted = false
  /** The replica was dropped: pull only until a session succeeds. */
  #pullOnly = false
  #check: Promise<void> | undefined
  #lastWritten = Number.NEGATIVE_INFINITY

  constructor(init: StaleNodeGuardInit) {
    this.#init = init
  }

  /** Runs the check if it still applies (concurrent sessions share one). Returns whether to pull only. */
  async beforeSession(): Promise<boolean> {
    if (this.#contacted) return false
    this.#check ??= this.#checkOnce().finally(() => {
      this.#check = undefined
    })
    await this.#check
    return this.#pullOnly
  }

  /** After a successful session: the rule no longer applies, and `lastContactMs` is kept current. */
  async noteContact(log: Logger): Promise<void> {
    this.#contacted = true
    this.#pullOnly = false
    const now = this.#init.now()
    if (now - this.#lastWritten < CONTACT_WRITE_INTERVAL_MS) return
    this.#lastWritten = now
    try {
      await this.#init.replica.putMeta(LAST_CONTACT_META, String(now))
    } catch (err) {
      log.warn({ err }, 'anti-entropy: could not record the last contact time')
    }
  }

  async #checkOnce(): Promise<void> {
    if (this.#pullOnly) return
    const { replica, log } = this.#init
    const { stale, lastContactMs } = await checkStale(replica, this.#init.now())
    if (!stale) return
    log.warn(
      { lastContact: new Date(lastContactMs!).toISOString(), tombstoneGraceMs: replica.tombstoneGraceMs },
      'anti-entropy: last contact with the cluster is older than the tombstone grace period; dropping the local replica and pulling a fresh copy (pushing it back could resurrect deleted entities)',
    )
    await replica.clear()
    this.#pullOnly = true
    this.#init.onReset()
  }
}
