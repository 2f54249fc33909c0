import { describe, expect, it } from "vitest";
import { sourceHealthDetails } from "../src/cli/commands/proxies.ts";

describe("proxies get's source health", () => {
  it("lists a Prometheus source's queries with their errors beside its instances", () => {
    const text = sourceHealthDetails({
      kind: "prometheus",
      lastScrapeAt: Date.UTC(2026, 11, 2, 18, 0, 0),
      error: null,
      targets: [
        { instance: "edge-1", url: "", scrapedAt: 0, durationMs: 3.4, ok: true, sampled: true, error: null },
      ],
      queries: [
        {
          field: "requestRate",
          promql: "rate(http_requests_total[1m])",
          queriedAt: 0,
          durationMs: 4.6,
          ok: true,
          series: 2,
          error: null,
        },
        {
          field: "cpuPercent",
          promql: "avg(cpu",
          queriedAt: 0,
          durationMs: 1,
          ok: false,
          series: 0,
          error: "bad_data: parse error",
        },
      ],
    });
    expect(text).toContain("last scrape: 2026-12-02T18:00:00.000Z");
    expect(text).toMatch(/queries:\n/);
    expect(text).toMatch(/requestRate +rate\(http_requests_total\[1m\]\) +yes +2 +5/);
    expect(text).toMatch(/cpuPercent +avg\(cpu +no +0 +1 +bad_data: parse error/);
  });

  it("says when no round is known", () => {
    expect(sourceHealthDetails(null)).toContain("none known");
  });
});
