import { TIER_LIMITS, type Tier } from "@proxyscale/core";

export interface RateLimitVerdict {
  allowed: boolean;
  limitPerMinute: number;
  /** Seconds until one more request would be allowed (0 when allowed). */
  retryAfterSeconds: number;
}

export interface RateLimiter {
  take(userId: string, tier: Tier): RateLimitVerdict;
}

interface Bucket {
  tokens: number;
  refilledAt: number;
}

/**
 * One token bucket per user: capacity = the tier's requests per minute, refilled continuously.
 * In-process: with N servers a user gets up to N times the rate, which the docs state.
 */
export function createRateLimiter(options: {
  clock: () => number;
  requestsPerMinute: Partial<Record<Tier, number>>;
}): RateLimiter {
  const buckets = new Map<string, Bucket>();
  return {
    take(userId, tier) {
      const limit = options.requestsPerMinute[tier] ?? TIER_LIMITS[tier].requestsPerMinute;
      const now = options.clock();
      const perMs = limit / 60_000;
      const bucket = buckets.get(userId) ?? { tokens: limit, refilledAt: now };
      bucket.tokens = Math.min(limit, bucket.tokens + (now - bucket.refilledAt) * perMs);
      bucket.refilledAt = now;
      buckets.set(userId, bucket);
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { allowed: true, limitPerMinute: limit, retryAfterSeconds: 0 };
      }
      return {
        allowed: false,
        limitPerMinute: limit,
        retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000)),
      };
    },
  };
}
