import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { AuthenticationError, type TokenVerifier } from "@proxyscale/api";
import { roleAtLeast } from "@proxyscale/core";

/** Who may read /metrics: it names every tenant's proxies, so by default a scraper must show a token. */
export interface MetricsAccess {
  /** PROXYSCALE_METRICS_PUBLIC=1: anyone may scrape (a private network, a sidecar). Default false. */
  public?: boolean;
  /** PROXYSCALE_METRICS_TOKEN: a static bearer token a scraper carries. An admin JWT is accepted too. */
  token?: string | undefined;
}

export type MetricsVerdict = { allowed: true } | { allowed: false; status: 401 | 403; message: string };

const digest = (text: string) => createHash("sha256").update(text).digest();

/**
 * Decides a scrape: public, or `Authorization: Bearer <PROXYSCALE_METRICS_TOKEN>` (compared in constant time, on
 * digests so the length leaks nothing either), or a valid JWT whose role is admin.
 */
export function createMetricsGuard(access: MetricsAccess, verifyToken: TokenVerifier) {
  const expected = access.token ? digest(access.token) : undefined;
  return async (req: IncomingMessage): Promise<MetricsVerdict> => {
    if (access.public) return { allowed: true };
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
    if (!match) {
      return {
        allowed: false,
        status: 401,
        message: "/metrics needs Authorization: Bearer <PROXYSCALE_METRICS_TOKEN or an admin token>",
      };
    }
    const presented = match[1] as string;
    if (expected && timingSafeEqual(digest(presented), expected)) return { allowed: true };
    try {
      const verified = await verifyToken(presented);
      if (roleAtLeast(verified.role, "admin")) return { allowed: true };
      return {
        allowed: false,
        status: 403,
        message: `/metrics requires role admin or the metrics token; your token has role ${verified.role}`,
      };
    } catch (error) {
      if (!(error instanceof AuthenticationError)) throw error;
      return { allowed: false, status: 401, message: `/metrics: ${error.message}` };
    }
  };
}
