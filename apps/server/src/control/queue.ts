/**
 * A keyed work queue after client-go's workqueue, the one Kubernetes' controllers are built on:
 * - a key added while it waits is queued once (its work descriptions are merged);
 * - a key added while a worker holds it is marked dirty and queued again when that worker is done, so it is
 *   processed once more after the add, never by two workers at once;
 * - workers take keys in batches, so what piles up while they are busy is handled together;
 * - urgent work (a push, in the control loop) is taken before the rest (a reconcile's page), oldest first in each;
 * - with `laneOf` (the proxy's owner, in the control loop), a batch is shared round-robin between lanes within
 *   each of those two classes, so one owner with thousands of queued keys fills a batch only when no one else
 *   waits; keys of an unknown lane share one.
 *
 * `add` resolves when the key has been processed once after the call (the same work reaches everyone who added
 * it meanwhile), which lets a caller wait for its own push or a reconcile wait for its page.
 */
export class KeyedQueue<K, W> {
  /** Keys waiting, in the order they were first added. */
  private readonly waiting = new Map<K, Entry<W>>();
  /** The waiting keys whose work is urgent, in the order they became so. */
  private readonly urgentKeys = new Set<K>();
  /** Keys a worker holds, with the entry they will be queued again with (dirty) if added meanwhile. */
  private readonly processing = new Map<K, Entry<W> | null>();
  private readonly takers: Array<() => void> = [];
  private readonly idlers: Array<() => void> = [];
  private closed = false;

  /**
   * `merge` combines the work of a key added again before it was taken; `urgent` picks what goes first;
   * `laneOf` names the lane a key is shared fairly in (undefined: the shared lane of unknown keys).
   */
  constructor(
    private readonly merge: (queued: W, added: W) => W,
    private readonly urgent: (work: W) => boolean = () => false,
    private readonly laneOf: (key: K) => unknown = () => undefined,
  ) {}

  get length(): number {
    return this.waiting.size;
  }

  /** Nothing waits and no worker holds a key. */
  isIdle(): boolean {
    return this.waiting.size === 0 && this.processing.size === 0;
  }

  /** Whether a worker holds the key now. */
  isProcessing(key: K): boolean {
    return this.processing.has(key);
  }

  add(key: K, work: W): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      if (this.processing.has(key)) {
        const dirty = this.processing.get(key);
        if (dirty) merge(dirty, work, resolve, this.merge);
        else this.processing.set(key, { work, resolvers: [resolve] });
        return;
      }
      const queued = this.waiting.get(key);
      if (queued) {
        merge(queued, work, resolve, this.merge);
        if (this.urgent(queued.work)) this.urgentKeys.add(key);
      } else {
        this.enqueue(key, { work, resolvers: [resolve] });
      }
    });
  }

  /** Every waiting worker looks again (one that takes only urgent work may not want what arrived). */
  private wakeTakers(): void {
    for (const wake of this.takers.splice(0)) wake();
  }

  private enqueue(key: K, entry: Entry<W>): void {
    this.waiting.set(key, entry);
    if (this.urgent(entry.work)) this.urgentKeys.add(key);
    this.wakeTakers();
  }

  /**
   * Up to `max` waiting keys, urgent ones first, oldest first, now held by the caller until `done`. Waits while
   * nothing (with `urgentOnly`, nothing urgent) is queued; an empty batch means the queue was shut down.
   */
  async take(max: number, urgentOnly = false): Promise<Array<Taken<K, W>>> {
    while ((urgentOnly ? this.urgentKeys.size : this.waiting.size) === 0 && !this.closed) {
      await new Promise<void>((resolve) => this.takers.push(resolve));
    }
    if (this.closed) return [];
    const batch: Array<Taken<K, W>> = [];
    const hold = (key: K) => {
      const entry = this.waiting.get(key)!;
      this.waiting.delete(key);
      this.urgentKeys.delete(key);
      this.processing.set(key, null);
      batch.push({ key, work: entry.work, resolvers: entry.resolvers });
    };
    for (const key of this.fairly(this.urgentKeys, max)) hold(key);
    if (!urgentOnly && batch.length < max) {
      for (const key of this.fairly(this.waiting.keys(), max - batch.length)) hold(key);
    }
    // More than one batch's worth: wake the other workers too.
    if (this.waiting.size > 0) this.wakeTakers();
    return batch;
  }

  /**
   * Up to `max` of `keys` (oldest first within a lane), one per lane in turn, lanes in the order of their oldest
   * key: with one lane this is simply the oldest `max`.
   */
  private fairly(keys: Iterable<K>, max: number): K[] {
    const lanes = new Map<unknown, K[]>();
    for (const key of keys) {
      const lane = this.laneOf(key);
      const list = lanes.get(lane);
      if (list) list.push(key);
      else lanes.set(lane, [key]);
    }
    if (lanes.size <= 1) return [...(lanes.values().next().value ?? [])].slice(0, max);
    const picked: K[] = [];
    const lists = [...lanes.values()];
    for (let round = 0; picked.length < max; round++) {
      let any = false;
      for (const list of lists) {
        if (round >= list.length) continue;
        any = true;
        picked.push(list[round]!);
        if (picked.length >= max) break;
      }
      if (!any) break;
    }
    return picked;
  }

  /** The worker is done with these keys: their adders are told, and dirty keys are queued again. */
  done(batch: ReadonlyArray<Taken<K, W>>): void {
    for (const item of batch) {
      const dirty = this.processing.get(item.key);
      this.processing.delete(item.key);
      for (const resolve of item.resolvers) resolve();
      if (dirty && !this.closed) {
        this.enqueue(item.key, dirty);
      } else if (dirty) {
        for (const resolve of dirty.resolvers) resolve();
      }
    }
    if (this.isIdle()) for (const resolve of this.idlers.splice(0)) resolve();
  }

  /** Resolves when nothing is waiting and no worker holds a key. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idlers.push(resolve));
  }

  /**
   * No more adds; workers waiting in `take` get an empty batch. Waiting keys are dropped (their adders are
   * released); keys being processed finish.
   */
  shutDown(): void {
    this.closed = true;
    for (const entry of this.waiting.values()) for (const resolve of entry.resolvers) resolve();
    this.waiting.clear();
    this.urgentKeys.clear();
    for (const wake of this.takers.splice(0)) wake();
    if (this.processing.size === 0) for (const resolve of this.idlers.splice(0)) resolve();
  }
}

interface Entry<W> {
  work: W;
  resolvers: Array<() => void>;
}

export interface Taken<K, W> {
  key: K;
  work: W;
  resolvers: ReadonlyArray<() => void>;
}

function merge<W>(entry: Entry<W>, work: W, resolve: () => void, combine: (a: W, b: W) => W): void {
  entry.work = combine(entry.work, work);
  entry.resolvers.push(resolve);
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight (the shape every bounded step of the loop
 * shares). A call that throws does not stop the others; `onError` hears it.
 */
export async function forEachBounded<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
  onError: (item: T, error: unknown) => void,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        onError(item, error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
