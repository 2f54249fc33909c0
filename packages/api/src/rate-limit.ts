import { TIER_LIMITS, type Tier } from "@proxyscale/core";
import { type Db, exchangeRateUsage, pruneRateUsage, type RateUsage } from "@proxyscale/db";

export interface RateLimitVerdict {
  allowed: boolean;
  limitPerMinute: number;
  /** Seconds until one more request would be allowed (0 when allowed). */
  retryAfterSeconds: number;
}

export interface RateLimiter {
  take(userId: string, tier: Tier): RateLimitVerdict;
  /** Stops sharing counts (the server is shutting down). */
  close(): void;
}

/** The shared counts are kept per minute. */
const WINDOW_MS = 60_000;
const DEFAULT_RATE_SYNC_MS = 1_000;

const windowOf = (time: number) => Math.floor(time / WINDOW_MS) * WINDOW_MS;

interface UserState {
  tokens: number;
  refilledAt: number;
  /** This server's requests per window that the database has not been told of yet. */
  pending: Map<number, number>;
  /** Every server's requests per window at this server's last exchange, its own included. */
  seen: Map<number, number>;
}

/**
 * One token bucket per user: capacity = the tier's requests per minute, refilled continuously. With `shared`,
 * servers share their counts through the database: every `syncIntervalMs` while it has users seen in the last
 * minute, a server adds their requests to per-minute counts and takes what the other servers admitted since its
 * last look out of its own buckets. Behind N servers a user so gets the tier's rate once rather than N times,
 * give or take one interval's requests; a user new to a server is charged the other servers' requests of the
 * current minute. A failed exchange (database down) is logged, and each server limits on its own until one
 * succeeds.
 */
export function createRateLimiter(options: {
  clock: () => number;
  requestsPerMinute: Partial<Record<Tier, number>>;
  shared?: {
    db: Db;
    logger: { warn(obj: object, msg?: string): void };
    syncIntervalMs?: number;
  };
}): RateLimiter {
  const users = new Map<string, UserState>();
  const shared = options.shared;
  const syncIntervalMs = shared?.syncIntervalMs ?? DEFAULT_RATE_SYNC_MS;
  let syncing = false;
  let lastSync = Number.NEGATIVE_INFINITY;
  let prunedWindow = Number.NEGATIVE_INFINITY;
  let next: ReturnType<typeof setTimeout> | null = null;
  let closed = false;

  // Exchanges run while users are remembered (a minute after their last request), one at a time.
  const schedule = () => {
    if (!shared || closed || syncing || next || users.size === 0) return;
    const wait = Math.max(0, lastSync + syncIntervalMs - options.clock());
    next = setTimeout(() => {
      next = null;
      syncing = true;
      lastSync = options.clock();
      exchange(shared.db)
        .catch((error: unknown) => {
          shared.logger.warn({ err: (error as Error).message }, "rate limit: sharing counts failed");
        })
        .finally(() => {
          syncing = false;
          schedule();
        });
    }, wait);
    next.unref();
  };

  async function exchange(db: Db) {
    const now = options.clock();
    const current = windowOf(now);
    const add: RateUsage[] = [];
    for (const [userId, user] of users) {
      for (const [windowStart, requests] of user.pending) add.push({ userId, windowStart, requests });
    }
    const counts = await exchangeRateUsage(db, {
      add,
      userIds: [...users.keys()],
      sinceWindow: current - WINDOW_MS,
    });
    const key = (userId: string, windowStart: number) => `${windowStart} ${userId}`;
    const sent = new Map(add.map((usage) => [key(usage.userId, usage.windowStart), usage.requests]));
    for (const usage of add) {
      const user = users.get(usage.userId);
      if (!user) continue;
      const left = (user.pending.get(usage.windowStart) ?? 0) - usage.requests;
      if (left > 0) user.pending.set(usage.windowStart, left);
      else user.pending.delete(usage.windowStart);
    }
    // The counts were read before this exchange's additions: whatever grew since `seen` is other servers'.
    const before = new Map(counts.map((usage) => [key(usage.userId, usage.windowStart), usage]));
    for (const usage of add) {
      const id = key(usage.userId, usage.windowStart);
      if (!before.has(id)) before.set(id, { ...usage, requests: 0 });
    }
    for (const [id, usage] of before) {
      const user = users.get(usage.userId);
      if (!user) continue;
      const seen = user.seen.get(usage.windowStart);
      const others =
        seen === undefined ? (usage.windowStart === current ? usage.requests : 0) : usage.requests - seen;
      if (others > 0) user.tokens -= others;
      user.seen.set(usage.windowStart, usage.requests + (sent.get(id) ?? 0));
    }
    for (const [userId, user] of users) {
      for (const windowStart of user.seen.keys())
        if (windowStart < current - WINDOW_MS) user.seen.delete(windowStart);
      // A user quiet for a minute has a full bucket again: nothing to remember.
      if (user.pending.size === 0 && now - user.refilledAt > WINDOW_MS) users.delete(userId);
    }
    if (current !== prunedWindow) {
      prunedWindow = current;
      await pruneRateUsage(db, { before: current - WINDOW_MS });
    }
  }

  return {
    take(userId, tier) {
      const limit = options.requestsPerMinute[tier] ?? TIER_LIMITS[tier].requestsPerMinute;
      const now = options.clock();
      const perMs = limit / 60_000;
      let user = users.get(userId);
      if (!user) {
        user = { tokens: limit, refilledAt: now, pending: new Map(), seen: new Map() };
        users.set(userId, user);
      }
      user.tokens = Math.min(limit, user.tokens + (now - user.refilledAt) * perMs);
      user.refilledAt = now;
      let verdict: RateLimitVerdict;
      if (user.tokens >= 1) {
        user.tokens -= 1;
        if (shared) {
          const window = windowOf(now);
          user.pending.set(window, (user.pending.get(window) ?? 0) + 1);
        }
        verdict = { allowed: true, limitPerMinute: limit, retryAfterSeconds: 0 };
      } else {
        verdict = {
          allowed: false,
          limitPerMinute: limit,
          retryAfterSeconds: Math.max(1, Math.ceil((1 - user.tokens) / perMs / 1000)),
        };
      }
      schedule();
      return verdict;
    },
    close() {
      closed = true;
      if (next) clearTimeout(next);
      next = null;
    },
  };
}
