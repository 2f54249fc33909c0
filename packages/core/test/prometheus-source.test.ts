import { describe, expect, it } from "vitest";
import {
  PROMETHEUS_FLEET_INSTANCE,
  type PrometheusQueryResponse,
  prometheusQueryValues,
  prometheusReadings,
  scrapedSample,
} from "../src/index.ts";

const vector = (...series: Array<[Record<string, string>, string]>): PrometheusQueryResponse => ({
  status: "success",
  data: {
    resultType: "vector",
    result: series.map(([metric, value]) => ({ metric, value: [1700000000, value] })),
  },
});

describe("a Prometheus query's answer read as per-replica or fleet values", () => {
  it("keys a vector's series by their instance label", () => {
    expect(prometheusQueryValues(vector([{ instance: "a" }, "1.5"], [{ instance: "b" }, "2"]))).toEqual({
      ok: true,
      series: 2,
      values: [
        { instance: "a", value: 1.5 },
        { instance: "b", value: 2 },
      ],
    });
  });

  it("reads a scalar and a single unlabelled series as the fleet's value", () => {
    expect(
      prometheusQueryValues({ status: "success", data: { resultType: "scalar", result: [1, "7"] } }),
    ).toMatchObject({ ok: true, values: [{ instance: null, value: 7 }] });
    expect(prometheusQueryValues(vector([{}, "3"]))).toMatchObject({
      ok: true,
      values: [{ instance: null, value: 3 }],
    });
  });

  it("leaves a NaN or infinite value out, so the field is missing rather than 0", () => {
    expect(prometheusQueryValues(vector([{ instance: "a" }, "NaN"], [{ instance: "b" }, "+Inf"]))).toEqual({
      ok: true,
      series: 2,
      values: [],
    });
  });

  it("refuses series it cannot tell apart, a range vector and Prometheus' own error", () => {
    expect(prometheusQueryValues(vector([{ job: "x" }, "1"], [{ job: "y" }, "2"]))).toMatchObject({
      ok: false,
      reason: expect.stringContaining("without an instance label"),
    });
    expect(
      prometheusQueryValues(vector([{ instance: "a", code: "2" }, "1"], [{ instance: "a" }, "2"])),
    ).toMatchObject({ ok: false, reason: expect.stringContaining("several series for instance a") });
    expect(
      prometheusQueryValues({ status: "success", data: { resultType: "matrix", result: [] } }),
    ).toMatchObject({
      ok: false,
      reason: expect.stringContaining("instant vector or a scalar"),
    });
    expect(prometheusQueryValues({ status: "error", errorType: "bad_data", error: "parse error" })).toEqual({
      ok: false,
      reason: "Prometheus refused the query: bad_data: parse error",
    });
  });
});

describe("one round of queries made into each replica's reading", () => {
  it("fills each replica from its own series and from the fleet's value", () => {
    const readings = prometheusReadings([
      {
        field: "requestRate",
        result: prometheusQueryValues(vector([{ instance: "a" }, "10"], [{ instance: "b" }, "20"])),
      },
      { field: "cpuPercent", result: prometheusQueryValues(vector([{}, "40"])) },
    ]);
    expect(Object.fromEntries(readings)).toEqual({
      a: { values: { requestRate: 10, cpuPercent: 40 }, missing: [], restarted: false },
      b: { values: { requestRate: 20, cpuPercent: 40 }, missing: [], restarted: false },
    });
  });

  it("gives a failed query's field as missing, so no sample is made", () => {
    const readings = prometheusReadings([
      { field: "requestRate", result: prometheusQueryValues(vector([{ instance: "a" }, "10"])) },
      { field: "custom.queue", result: { ok: false, reason: "no answer within 800 ms" } },
    ]);
    const reading = readings.get("a")!;
    expect(reading.missing).toEqual(["custom.queue"]);
    expect(scrapedSample(reading, { instanceId: "a", at: 1 })).toEqual({
      ok: false,
      reason: "no value for custom.queue",
    });
  });

  it("stands one fleet sample for queries that all aggregate the fleet", () => {
    const readings = prometheusReadings([
      { field: "requestRate", result: prometheusQueryValues(vector([{}, "12"])) },
      { field: "custom.connections", result: prometheusQueryValues(vector([{}, "3"])) },
    ]);
    expect([...readings.keys()]).toEqual([PROMETHEUS_FLEET_INSTANCE]);
    const sample = scrapedSample(readings.get(PROMETHEUS_FLEET_INSTANCE)!, { instanceId: "fleet", at: 1 });
    expect(sample).toMatchObject({ ok: true, metrics: { requestRate: 12, custom: { connections: 3 } } });
  });
});
