import { TIER_LIMITS } from "@proxyscale/core";
import { describe, expect, it } from "vitest";
import { createTokenVerifier, parseLifetime, signToken, verifyToken } from "../src/auth.ts";
import { createRateLimiter } from "../src/rate-limit.ts";

const secret = "unit-test-secret-0123456789abcdef0123";

describe("signToken / verifyToken", () => {
  it("round-trips sub, role and tier with an expiry", async () => {
    const now = Date.UTC(2031, 5, 1);
    const jwt = await signToken({ sub: "ada", role: "operator", tier: "pro", secret, now, expiresIn: "2h" });
    const claims = await verifyToken(jwt, { jwtSecret: secret }, () => now + 1000);
    expect(claims).toEqual({ sub: "ada", role: "operator", tier: "pro", expiresAt: now + 2 * 3600_000 });
  });

  it("refuses to mint a token with invalid claims or a malformed lifetime", async () => {
    await expect(signToken({ sub: "", role: "admin", tier: "pro", secret })).rejects.toThrow();
    await expect(signToken({ sub: "x", role: "root" as never, tier: "pro", secret })).rejects.toThrow();
    expect(() => parseLifetime("forever")).toThrow(/must look like/);
    expect(() => parseLifetime(0)).toThrow(/positive/);
    expect(parseLifetime("15m")).toBe(900);
    expect(parseLifetime("30d")).toBe(2_592_000);
  });

  it("needs a secret or a JWKS URL", () => {
    expect(() => createTokenVerifier({})).toThrow(/PROXYSCALE_JWT_SECRET or PROXYSCALE_JWKS_URL/);
  });
});

describe("rate limiter", () => {
  it("allows the tier's requests per minute, refills over time, and keeps users apart", () => {
    let now = 0;
    const limiter = createRateLimiter({ clock: () => now, requestsPerMinute: { free: 2 } });
    expect(limiter.take("a", "free").allowed).toBe(true);
    expect(limiter.take("a", "free").allowed).toBe(true);
    const refused = limiter.take("a", "free");
    expect(refused).toEqual({ allowed: false, limitPerMinute: 2, retryAfterSeconds: 30 });
    expect(limiter.take("b", "free").allowed).toBe(true);
    now += 30_000;
    expect(limiter.take("a", "free").allowed).toBe(true);
    expect(limiter.take("a", "free").allowed).toBe(false);
    expect(limiter.take("c", "pro").limitPerMinute).toBe(TIER_LIMITS.pro.requestsPerMinute);
  });
});
