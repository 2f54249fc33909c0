import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  metricsSourceSchema,
  REDACTED,
  readScrape,
  redactedMetricsSourceSchema,
  redactMetricsSource,
  type Scrape,
  type ScrapeMapping,
  scrapedSample,
} from "../src/index.ts";
import { ExpositionError, parseExposition } from "../src/sources/exposition.ts";

const fixture = (name: string) => readFileSync(new URL(`./fixtures/scrape/${name}`, import.meta.url), "utf8");
/** A fixture parsed as one scrape taken at `at`. */
const scrapeOf = (name: string, at: number): Scrape => ({ at, series: parseExposition(fixture(name)) });
const scrapeText = (text: string, at: number): Scrape => ({ at, series: parseExposition(text) });

function issues(input: unknown) {
  const result = metricsSourceSchema.safeParse(input);
  if (result.success) throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
  return result.error.issues.map((issue) => ({ path: issue.path.join("."), message: issue.message }));
}

describe("parseExposition", () => {
  it("keeps every label set of a labelled histogram with its _sum and _count (the library alone loses them)", () => {
    const series = parseExposition(fixture("envoy-a.prom"));
    const sums = series.filter((s) => s.name === "envoy_http_downstream_rq_time_sum");
    expect(sums).toEqual([
      {
        name: "envoy_http_downstream_rq_time_sum",
        labels: { envoy_http_conn_manager_prefix: "admin" },
        value: 3,
      },
      {
        name: "envoy_http_downstream_rq_time_sum",
        labels: { envoy_http_conn_manager_prefix: "ingress_http" },
        value: 8000,
      },
    ]);
    expect(series.filter((s) => s.name === "envoy_http_downstream_rq_time_bucket")).toHaveLength(5);
  });

  it("reads the last line of a text without a final newline", () => {
    expect(parseExposition("a 1\nb 2").map((s) => [s.name, s.value])).toEqual([
      ["a", 1],
      ["b", 2],
    ]);
  });

  it("reads NaN and ±Inf as the floats they are", () => {
    expect(parseExposition('x NaN\ny{le="+Inf"} +Inf\nz -Inf\n').map((s) => s.value)).toEqual([
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ]);
  });

  it.each([
    ["an HTML page", "<html>\n<body>Bad gateway</body>\n</html>\n"],
    ["JSON", '{"requests": 12}\n'],
    ["an empty body", ""],
    ["a sample without a value", "http_requests_total\n"],
    ["a broken TYPE line", "# TYPE a counter extra\na 1\n"],
  ])("refuses %s instead of reading zeros from it", (_what, text) => {
    expect(() => parseExposition(text)).toThrow(ExpositionError);
  });
});

describe("the haproxy mapping (captured from Debian's HAProxy 2.6.12 built-in exporter)", () => {
  // Between the two captures: 45 requests answered 200 and 5 answered 500 through frontend fe, and one scrape
  // through frontend stats.
  const first = scrapeOf("haproxy-2.6-a.prom", 1_000_000);
  const second = scrapeOf("haproxy-2.6-b.prom", 1_010_000);

  it("gives the request rate from the frontends' counter deltas, the 5xx share, latency, cpu and sessions", () => {
    const reading = readScrape("haproxy", first, second);
    expect(reading.missing).toEqual([]);
    expect(reading.values.requestRate).toBeCloseTo(51 / 10, 10);
    // The exporter's own response counts among the responses too.
    expect(reading.values.errorRatePercent).toBeCloseTo((5 / 51) * 100, 10);
    expect(reading.values.avgLatencyMs).toBeCloseTo(1, 10);
    expect(reading.values.cpuPercent).toBe(0);
    expect(reading.values.connections).toBe(1);
  });

  it("has no rates on a replica's first scrape: those fields are missing, not 0", () => {
    const reading = readScrape("haproxy", null, first);
    expect(reading.missing).toEqual(["requestRate", "avgLatencyMs", "errorRatePercent"]);
    expect(reading.values.requestRate).toBeUndefined();
    expect(scrapedSample(reading, { instanceId: "a", at: first.at })).toEqual({
      ok: false,
      reason: "no value for requestRate, avgLatencyMs, errorRatePercent",
    });
  });

  it("treats a changed process start time as a restart: no rate for that interval even when counters grew", () => {
    const restarted = fixture("haproxy-2.6-b.prom").replace(
      /^haproxy_process_start_time_seconds .*$/m,
      "haproxy_process_start_time_seconds 1796231999",
    );
    const reading = readScrape("haproxy", first, scrapeText(restarted, 1_010_000));
    expect(reading.restarted).toBe(true);
    expect(reading.missing).toContain("requestRate");
  });
});

describe("the nginx mapping (captured from prometheus-nginx-exporter 0.11 over nginx 1.22's stub_status)", () => {
  const first = scrapeOf("nginx-exporter-0.11-a.prom", 0);
  const second = scrapeOf("nginx-exporter-0.11-b.prom", 5_000);

  it("gives the request rate and active connections; the sample's other metrics are not provided (0)", () => {
    const reading = readScrape("nginx", first, second);
    expect(reading.values).toEqual({ connections: 1, requestRate: (49 - 18) / 5 });
    const sample = scrapedSample(reading, { instanceId: "n1", at: second.at });
    expect(sample).toEqual({
      ok: true,
      metrics: {
        cpuPercent: 0,
        memoryPercent: 0,
        requestRate: 6.2,
        avgLatencyMs: 0,
        errorRatePercent: 0,
        custom: { connections: 1 },
        instanceId: "n1",
        recordedAt: 5_000,
      },
    });
  });

  it("takes nginx_up 0 (the exporter could not reach nginx) for a failed scrape", () => {
    const down = fixture("nginx-exporter-0.11-b.prom").replace(/^nginx_up 1$/m, "nginx_up 0");
    expect(readScrape("nginx", first, scrapeText(down, 5_000)).missing).toEqual([
      "requestRate",
      "connections",
    ]);
  });
});

describe("the envoy mapping", () => {
  const first = scrapeOf("envoy-a.prom", 0);
  const second = scrapeOf("envoy-b.prom", 10_000);

  it("counts the ingress connection managers but not the admin listener the scrapes go through", () => {
    const reading = readScrape("envoy", first, second);
    expect(reading.missing).toEqual([]);
    expect(reading.values.requestRate).toBe(60);
    expect(reading.values.errorRatePercent).toBeCloseTo(7.5, 10);
    expect(reading.values.avgLatencyMs).toBe(10);
    expect(reading.values.connections).toBe(55);
  });

  it("takes uptime going down for a restart", () => {
    const reading = readScrape("envoy", second, { ...first, at: 20_000 });
    expect(reading.restarted).toBe(true);
    expect(reading.missing).toContain("requestRate");
  });
});

describe("custom mappings", () => {
  const mapping: ScrapeMapping = {
    custom: [
      { series: "http_requests_total", labels: { job: "edge" }, field: "requestRate", as: "rate" },
      { series: "queue_depth", field: "custom.queueDepth", as: "gauge" },
    ],
  };
  const scrape = (requests: number, at: number, extra = "queue_depth 7\n") =>
    scrapeText(
      `http_requests_total{job="edge",code="200"} ${requests}\nhttp_requests_total{job="batch"} 99999\n${extra}`,
      at,
    );

  it("two scrapes make a rate of the selected series only, and a gauge as it is", () => {
    const reading = readScrape(mapping, scrape(100, 0), scrape(400, 15_000, "queue_depth 7\n"));
    expect(reading.values).toEqual({ requestRate: 20, "custom.queueDepth": 7 });
    const sample = scrapedSample(reading, { instanceId: "r1", at: 15_000 });
    expect(sample.ok && sample.metrics.custom).toEqual({ queueDepth: 7 });
  });

  it("a counter reset (the value went down) gives no rate for that interval: missing, never negative or 0", () => {
    const reading = readScrape(mapping, scrape(400, 0), scrape(30, 15_000));
    expect(reading.values.requestRate).toBeUndefined();
    expect(reading.missing).toEqual(["requestRate"]);
    // The next interval, from the reset value on, has its rate again.
    expect(readScrape(mapping, scrape(30, 15_000), scrape(180, 30_000)).values.requestRate).toBe(10);
  });

  it("a missing series leaves its field missing and the replica without a sample", () => {
    const reading = readScrape(mapping, scrape(100, 0), scrape(400, 15_000, ""));
    expect(reading.missing).toEqual(["custom.queueDepth"]);
    expect(scrapedSample(reading, { instanceId: "r1", at: 15_000 }).ok).toBe(false);
  });

  it("a clock that did not advance gives no rate", () => {
    expect(readScrape(mapping, scrape(100, 5_000), scrape(400, 5_000)).values.requestRate).toBeUndefined();
  });

  it("a mapped value outside the sample's bounds gives no sample, with the reason", () => {
    const cpu: ScrapeMapping = { custom: [{ series: "cpu", field: "cpuPercent", as: "gauge" }] };
    const result = scrapedSample(readScrape(cpu, null, scrapeText("cpu 250\n", 0)), {
      instanceId: "r",
      at: 0,
    });
    expect(result).toEqual({
      ok: false,
      reason: "mapped values out of bounds: cpuPercent: must be a percent: at most 100",
    });
  });
});

describe("metricsSourceSchema", () => {
  it("defaults a scrape's interval, timeout and targets", () => {
    expect(metricsSourceSchema.parse({ kind: "scrape", mapping: "haproxy" })).toEqual({
      kind: "scrape",
      intervalSeconds: 15,
      timeoutMs: 5_000,
      targets: { from: "actuator", path: "/metrics" },
      mapping: "haproxy",
    });
  });

  it("names the field and the rule of each bad input", () => {
    expect(issues({ kind: "scrape", mapping: "traefik" })).toEqual([
      { path: "mapping", message: "must be one of haproxy, nginx, envoy, or { custom: [...] }" },
    ]);
    expect(issues({ kind: "scrape", mapping: "nginx", intervalSeconds: 2, timeoutMs: 5_000 })).toEqual([
      {
        path: "timeoutMs",
        message: "must be at most intervalSeconds × 1000 (2000 ms): a scrape ends before the next one starts",
      },
    ]);
    expect(
      issues({
        kind: "scrape",
        mapping: { custom: [{ series: "x_total", field: "latency", as: "rate" }] },
      })[0],
    ).toEqual({
      path: "mapping.custom.0.field",
      message:
        "must be one of cpuPercent, memoryPercent, requestRate, avgLatencyMs, errorRatePercent, connections or custom.<name> (a letter or _, then letters, digits, _ . : -)",
    });
    expect(
      issues({
        kind: "scrape",
        mapping: "nginx",
        targets: {
          static: [
            { instance: "a", url: "http://10.0.0.1:9113/metrics" },
            { instance: "a", url: "http://10.0.0.2:9113/metrics" },
          ],
        },
      }),
    ).toEqual([{ path: "targets.static.1.instance", message: "must be unique: a is listed twice" }]);
    expect(issues({ kind: "prometheus", url: "ftp://prom", queries: [] }).map((i) => i.path)).toEqual([
      "url",
      "queries",
    ]);
  });

  it("redacts a prometheus source's bearer token, in a shape the redacted schema accepts", () => {
    const source = metricsSourceSchema.parse({
      kind: "prometheus",
      url: "http://prometheus:9090",
      bearerToken: "s3cret-token",
      queries: [
        { field: "requestRate", promql: 'sum(rate(haproxy_frontend_http_requests_total{job="edge"}[1m]))' },
      ],
    });
    const redacted = redactMetricsSource(source);
    expect(redacted).toMatchObject({ bearerToken: REDACTED });
    expect(JSON.stringify(redacted)).not.toContain("s3cret-token");
    expect(redactedMetricsSourceSchema.parse(redacted)).toEqual(redacted);
  });
});
