import { liveInstanceCapFor } from "@proxyscale/core";
import { beforeAll, describe, expect, it } from "vitest";
import { type Client, client, forEachDriver, MID_LOAD, registerProxy, token, unique } from "./support.ts";

/** Issue 11, defect 5: one tenant must not slow the others, nor grow a proxy's latest state without bound. */

const sampleOf = (instanceId: string) => ({ ...MID_LOAD, instanceId });
const pods = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => sampleOf(`${prefix}-${i}`));

function p50(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function timedEvaluations(api: Client, proxyId: string, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const response = await api.request("POST", `/api/proxy/scaling/evaluate/${proxyId}`);
    times.push(performance.now() - started);
    expect(response.status).toBe(200);
  }
  return times;
}

forEachDriver("tenant isolation", (suite) => {
  let free: Client;

  beforeAll(async () => {
    free = client(suite().url, await token({ tier: "free", sub: unique("free") }));
  });

  describe("the live instance cap", () => {
    const cap = liveInstanceCapFor("free");

    it("refuses a push whole with 409 naming the cap once a proxy would pass twice its tier's replica cap", async () => {
      const proxyId = await registerProxy(free);
      const path = `/api/proxy/scaling/metrics/${proxyId}/batch`;
      const filled = await free.request("POST", path, { body: { samples: pods("pod", cap) } });
      expect(filled.status).toBe(201);
      const over = await free.request("POST", path, {
        body: { samples: [sampleOf("pod-0"), sampleOf("new-a"), sampleOf("new-b")] },
      });
      expect(over.status).toBe(409);
      expect(over.body.code).toBe("CONFLICT");
      expect(over.body.message).toContain(`tier free allows at most ${cap} live instances per proxy`);
      expect(over.body.message).toContain("Nothing of this push was stored");
      const single = await free.request("POST", `/api/proxy/scaling/metrics/${proxyId}`, {
        body: sampleOf("new-c"),
      });
      expect(single.status).toBe(409);
      // Known instances (and the fleet-average sample) still report.
      const known = await free.request("POST", path, { body: { samples: [sampleOf("pod-1"), MID_LOAD] } });
      expect(known.status).toBe(201);
      const latest = await free.request("GET", `/api/proxy/scaling/metrics/${proxyId}?limit=500`);
      const ids = latest.body.samples.map((s: { instanceId?: string }) => s.instanceId ?? "");
      expect(ids).toHaveLength(cap + 1);
      expect(ids.filter((id: string) => id.startsWith("new-"))).toEqual([]);
    });

    it("lets only one of two concurrent pushes that each fill the cap through", async () => {
      const proxyId = await registerProxy(free);
      const path = `/api/proxy/scaling/metrics/${proxyId}/batch`;
      const [a, b] = await Promise.all([
        free.request("POST", path, { body: { samples: pods("a", cap) } }),
        free.request("POST", path, { body: { samples: pods("b", cap) } }),
      ]);
      expect([a.status, b.status].sort()).toEqual([201, 409]);
      const latest = await free.request("GET", `/api/proxy/scaling/metrics/${proxyId}`);
      expect(latest.body.samples).toHaveLength(cap);
    });
  });

  describe("GET latest", () => {
    it("serves the latest samples a page at a time, following nextCursor to the end", async () => {
      const operator = client(suite().url, await token({ tier: "enterprise" }));
      const proxyId = await registerProxy(operator);
      await operator.request("POST", `/api/proxy/scaling/metrics/${proxyId}/batch`, {
        body: { samples: [MID_LOAD, ...pods("pod", 120)] },
      });
      const first = await operator.request("GET", `/api/proxy/scaling/metrics/${proxyId}`);
      expect(first.status).toBe(200);
      expect(first.body.samples).toHaveLength(50);
      expect(first.body.samples[0]).not.toHaveProperty("instanceId");
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: string = cursor ? `?limit=40&cursor=${cursor}` : "?limit=40";
        const page = await operator.request("GET", `/api/proxy/scaling/metrics/${proxyId}${query}`);
        expect(page.status).toBe(200);
        seen.push(...page.body.samples.map((s: { instanceId?: string }) => s.instanceId ?? "(fleet)"));
        cursor = page.body.nextCursor;
        pages += 1;
      } while (cursor);
      expect(pages).toBe(4);
      expect(new Set(seen).size).toBe(121);
      const tooLarge = await operator.request("GET", `/api/proxy/scaling/metrics/${proxyId}?limit=501`);
      expect(tooLarge.status).toBe(400);
      expect(tooLarge.body.zodIssues.map((issue: { field: string }) => issue.field)).toEqual(["limit"]);
      const badCursor = await operator.request("GET", `/api/proxy/scaling/metrics/${proxyId}?cursor=bm9wZQ`);
      expect(badCursor.status).toBe(400);
      expect(badCursor.body.message).toContain("cursor");
    });
  });

  describe("fairness", () => {
    // The issue's flood: a free-tier user, within its rate limit, pushing batches of 5,000 instance ids never
    // seen (40 batches carried 200,000) and evaluating its own proxy, while another tenant evaluates its own.
    it("refuses a free-tier tenant's flood of distinct instance ids past its cap while another tenant's evaluates all answer", async () => {
      const quietTenant = client(suite().url, await token({ tier: "free", sub: unique("quiet") }));
      const flooder = client(suite().url, await token({ tier: "free", sub: unique("flooder") }));
      const quietProxy = await registerProxy(quietTenant);
      await quietTenant.request("POST", `/api/proxy/scaling/metrics/${quietProxy}/batch`, {
        body: { samples: pods("q", 3) },
      });
      const flooded = await registerProxy(flooder);

      await timedEvaluations(quietTenant, quietProxy, 5); // warm-up
      const quiet = p50(await timedEvaluations(quietTenant, quietProxy, 30));

      let flooding = true;
      let floodRequests = 0;
      let refused = 0;
      let batch = 0;
      const pushLoop = async () => {
        while (flooding) {
          batch += 1;
          const response = await flooder.request("POST", `/api/proxy/scaling/metrics/${flooded}/batch`, {
            body: { samples: pods(`churn-${batch}`, 5_000) },
          });
          floodRequests += 1;
          if (response.status === 409) refused += 1;
        }
      };
      const evaluateLoop = async () => {
        while (flooding) {
          await flooder.request("POST", `/api/proxy/scaling/evaluate/${flooded}`);
          floodRequests += 1;
        }
      };
      const loops = [...Array.from({ length: 4 }, pushLoop), ...Array.from({ length: 4 }, evaluateLoop)];
      await expect.poll(() => floodRequests, { timeout: 30_000 }).toBeGreaterThan(8);
      const underFlood = p50(await timedEvaluations(quietTenant, quietProxy, 30));
      flooding = false;
      await Promise.all(loops);
      const latest = await flooder.request("GET", `/api/proxy/scaling/metrics/${flooded}?limit=500`);
      console.info(
        `[fairness] quiet p50 ${quiet.toFixed(1)} ms, flooded p50 ${underFlood.toFixed(1)} ms, ratio ${(underFlood / quiet).toFixed(2)}; flood requests ${floodRequests}, ${batch} batches of 5,000 ids (${refused} refused by the cap); the flooded proxy holds ${latest.body.samples.length} instances`,
      );
      expect(refused).toBeGreaterThan(0);
      expect(latest.body.samples.length).toBeLessThanOrEqual(liveInstanceCapFor("free"));
      // The latency ratio is printed, not asserted: it is a measurement (bench/fairness.bench.ts, BENCHMARKS.md
      // "Tenant fairness"), and on CI's shared cores, with every package's tests running beside this one, it
      // reached 8.06x with the fairness in place. The per-user admission that bounds it is proved without a clock
      // in packages/api/test/fair-share.test.ts; here every one of the quiet tenant's evaluates answered 200.
    }, 120_000);
  });
});
