/**
 * A keyed work queue after client-go's workqueue, the one Kubernetes' controllers are built on:
 * - a key added while it waits is queued once (its work descriptions are merged);
 * - a key added while a worker holds it is marked dirty and queued again when that worker is done, so it is
 *   processed once more after the add, never by two workers at once;
 * - workers take keys in batches, so what piles up while they are busy is handled together.
 *
 * `add` resolves when the key has been processed once after the call (the same work reaches everyone who added
 * it meanwhile), which lets a caller wait for its own push or a reconcile wait for its page.
 */
export class KeyedQueue<K, W> {
  /** Keys waiting, in the order they were first added. */
  private readonly waiting = new Map<K, Entry<W>>();
  /** Keys a worker holds, with the entry they will be queued again with (dirty) if added meanwhile. */
  private readonly processing = new Map<K, Entry<W> | null>();
  private readonly takers: Array<() => void> = [];
  private readonly idlers: Array<() => void> = [];
  private closed = false;

  /** `merge` combines the work of a key added again before it was taken. */
  constructor(private readonly merge: (queued: W, added: W) => W) {}

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
      if (queued) merge(queued, work, resolve, this.merge);
      else {
        this.waiting.set(key, { work, resolvers: [resolve] });
        this.takers.shift()?.();
      }
    });
  }

  /**
   * Up to `max` waiting keys, oldest first, now held by the caller until `done`. Waits while nothing is queued;
   * an empty batch means the queue was shut down.
   */
  async take(max: number): Promise<Array<Taken<K, W>>> {
    while (this.waiting.size === 0 && !this.closed) {
      await new Promise<void>((resolve) => this.takers.push(resolve));
    }
    if (this.closed) return [];
    const batch: Array<Taken<K, W>> = [];
    for (const [key, entry] of this.waiting) {
      if (batch.length >= max) break;
      this.waiting.delete(key);
      this.processing.set(key, null);
      batch.push({ key, work: entry.work, resolvers: entry.resolvers });
    }
    // More than one batch's worth: wake the next worker too.
    if (this.waiting.size > 0) this.takers.shift()?.();
    return batch;
  }

  /** The worker is done with these keys: their adders are told, and dirty keys are queued again. */
  done(batch: ReadonlyArray<Taken<K, W>>): void {
    for (const item of batch) {
      const dirty = this.processing.get(item.key);
      this.processing.delete(item.key);
      for (const resolve of item.resolvers) resolve();
      if (dirty && !this.closed) {
        this.waiting.set(item.key, dirty);
        this.takers.shift()?.();
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
