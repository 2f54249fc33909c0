import type { MetricSample } from "@proxyscale/core";
import { parsePolicy } from "@proxyscale/core";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import {
  type CappedPush,
  createProxy,
  type Db,
  InvalidInputError,
  insertCappedSamples,
  insertSamples,
  type LatestSample,
  latestSamples,
  latestSamplesPage,
  METRICS_RANGE_FIELDS,
  type MetricsRangeColumns,
  metricsRange,
  NotFoundError,
  type Page,
  pruneMetrics,
  pruneStaleInstances,
  queryRows,
  rollupMetrics,
  type SampleInput,
  upsertPolicy,
} from "../src/index.ts";
import { forEachDriver, inFreshSchema, unique } from "./drivers.ts";

const MINUTE = 60_000;
const DAY = 86_400_000;
/** A minute-aligned instant, so rollup buckets are known in advance. */
const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

function sample(at: number, value: number, extra: Partial<MetricSample> = {}): MetricSample {
  return {
    at,
    cpuPercent: value,
    memoryPercent: value / 2,
    requestRate: value * 10,
    avgLatencyMs: value + 1,
    errorRatePercent: value / 10,
    ...extra,
  };
}

function row(proxyId: string, at: number, value: number, extra: Partial<SampleInput> = {}): SampleInput {
  return { proxyId, sample: sample(at, value), loadScore: value, ...extra };
}

async function newProxy(db: Db, currentReplicas = 2) {
  const ownerId = unique("owner");
  return createProxy(db, { ownerId, name: unique("proxy"), currentReplicas, actorId: ownerId });
}

async function count(db: Db, table: string): Promise<number> {
  const [result] = await queryRows<{ n: number }>(db, sql.raw(`select count(*)::int as n from ${table}`));
  return result!.n;
}

/** Equal up to float rounding: rollups average averages, weighted by their sample counts. */
function expectSameColumns(actual: MetricsRangeColumns, expected: MetricsRangeColumns) {
  expect(actual.at).toEqual(expected.at);
  expect(actual.samples).toEqual(expected.samples);
  for (const [key, values] of Object.entries(expected)) {
    values.forEach((value, i) => {
      expect(actual[key as keyof MetricsRangeColumns][i], `${key}[${i}]`).toBeCloseTo(value as number, 9);
    });
  }
}

const average = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;

forEachDriver("metrics", ({ database }) => {
  const db = () => database().db;

  it("inserts a batch and fills replicas from the proxy when the sample has none", async () => {
    await inFreshSchema(database(), async (tx) => {
      const proxy = await newProxy(tx, 3);
      const inserted = await insertSamples(tx, [
        row(proxy.id, T0, 10),
        row(proxy.id, T0 + 1000, 20, { replicas: 5, unhealthyReplicas: 1 }),
      ]);
      expect(inserted).toBe(2);
      const rows = await queryRows<{ replicas: number; unhealthy_replicas: number | null }>(
        tx,
        sql`select replicas, unhealthy_replicas from proxy_load_metrics order by recorded_at`,
      );
      expect(rows).toEqual([
        { replicas: 3, unhealthy_replicas: null },
        { replicas: 5, unhealthy_replicas: 1 },
      ]);
    });
  });

  it("keeps the latest sample per instance: newest wins, a late older sample does not overwrite", async () => {
    const proxy = await newProxy(db());
    await insertSamples(db(), [
      { proxyId: proxy.id, sample: sample(T0 + 2000, 30, { instanceId: "a" }), loadScore: 30 },
      { proxyId: proxy.id, sample: sample(T0 + 1000, 20, { instanceId: "a" }), loadScore: 20 },
      {
        proxyId: proxy.id,
        sample: sample(T0 + 1000, 40, { instanceId: "b", custom: { queue: 7 } }),
        loadScore: 40,
      },
      { proxyId: proxy.id, sample: sample(T0 + 500, 50), loadScore: 50 },
    ]);
    await insertSamples(db(), [
      { proxyId: proxy.id, sample: sample(T0, 99, { instanceId: "a" }), loadScore: 99 },
    ]);
    const latest = (await latestSamples(db(), { proxyIds: [proxy.id] })).get(proxy.id)!;
    expect(latest.map((s) => [s.instanceId, s.at, s.cpuPercent])).toEqual([
      [undefined, T0 + 500, 50],
      ["a", T0 + 2000, 30],
      ["b", T0 + 1000, 40],
    ]);
    expect(latest[0]).not.toHaveProperty("instanceId");
    expect(latest[2]).toMatchObject({ custom: { queue: 7 }, loadScore: 40, replicas: 2 });
    const recent = (await latestSamples(db(), { proxyIds: [proxy.id], since: T0 + 1000 })).get(proxy.id)!;
    expect(recent.map((s) => s.instanceId)).toEqual(["a", "b"]);
  });

  it("stores a sample older than its instance's latest in the history, and the latest keeps the newer one", async () => {
    const proxy = await newProxy(db());
    await insertSamples(db(), [
      { proxyId: proxy.id, sample: sample(T0 + 60_000, 70, { instanceId: "a" }), loadScore: 70 },
    ]);
    // A reporter's late retry, and one whose clock lags: both older than the stored latest.
    await insertSamples(db(), [
      { proxyId: proxy.id, sample: sample(T0, 10, { instanceId: "a" }), loadScore: 10 },
    ]);
    await insertSamples(db(), [
      { proxyId: proxy.id, sample: sample(T0 + 30_000, 20, { instanceId: "a" }), loadScore: 20 },
    ]);
    const [latest] = (await latestSamples(db(), { proxyIds: [proxy.id] })).get(proxy.id)!;
    expect([latest!.at, latest!.cpuPercent, latest!.loadScore]).toEqual([T0 + 60_000, 70, 70]);
    const history = await queryRows<{ cpu: number }>(
      db(),
      sql`select cpu_percent as cpu from proxy_load_metrics where proxy_id = ${proxy.id}::uuid order by recorded_at`,
    );
    expect(history.map((row) => row.cpu)).toEqual([10, 20, 70]);
  });

  it("returns every requested proxy from latestSamples, [] for one without samples", async () => {
    const a = await newProxy(db());
    const b = await newProxy(db());
    await insertSamples(db(), [row(a.id, T0, 1)]);
    const latest = await latestSamples(db(), { proxyIds: [a.id, b.id, "not-a-uuid"] });
    expect([...latest.keys()].sort()).toEqual([a.id, b.id].sort());
    expect(latest.get(b.id)).toEqual([]);
    expect(latest.get(a.id)).toHaveLength(1);
  });

  it("splits a batch over 5,000 rows into statements in one transaction", async () => {
    const proxy = await newProxy(db());
    const rows = Array.from({ length: 5_500 }, (_, i) => row(proxy.id, T0 + i * 1000, i % 100));
    expect(await insertSamples(db(), rows)).toBe(5_500);
    const [result] = await queryRows<{ n: number }>(
      db(),
      sql`select count(*)::int as n from proxy_load_metrics where proxy_id = ${proxy.id}::uuid`,
    );
    expect(result!.n).toBe(5_500);
  });

  it("stores nothing of a batch when one row breaks a constraint", async () => {
    const proxy = await newProxy(db());
    await expect(
      insertSamples(db(), [row(proxy.id, T0, 10), { ...row(proxy.id, T0 + 1, 10), loadScore: 101 }]),
    ).rejects.toThrow();
    const latest = await latestSamples(db(), { proxyIds: [proxy.id] });
    expect(latest.get(proxy.id)).toEqual([]);
  });

  it("rejects samples of an unknown proxy with NotFoundError and a malformed id with InvalidInputError", async () => {
    const unknown = "00000000-0000-4000-8000-000000000000";
    await expect(insertSamples(db(), [row(unknown, T0, 1)])).rejects.toBeInstanceOf(NotFoundError);
    await expect(insertSamples(db(), [row("nope", T0, 1)])).rejects.toBeInstanceOf(InvalidInputError);
  });

  it("stores awkward instance ids and custom metric names exactly", async () => {
    const proxy = await newProxy(db());
    const instanceId = 'pod "x", {y} \\ z';
    await insertSamples(db(), [
      { proxyId: proxy.id, sample: sample(T0, 5, { instanceId, custom: { "a.b:c-d": 1.5 } }), loadScore: 5 },
    ]);
    const [latest] = (await latestSamples(db(), { proxyIds: [proxy.id] })).get(proxy.id)!;
    expect(latest).toMatchObject({ instanceId, custom: { "a.b:c-d": 1.5 } });
  });

  it("downsamples a range into equal intervals with exact averages", async () => {
    const proxy = await newProxy(db());
    // 60 samples, one a second; 6 points of 10 seconds each.
    await insertSamples(
      db(),
      Array.from({ length: 60 }, (_, i) => row(proxy.id, T0 + i * 1000, i)),
    );
    const range = await metricsRange(db(), { proxyId: proxy.id, from: T0, to: T0 + 60_000, points: 6 });
    expect(range.at).toEqual([0, 1, 2, 3, 4, 5].map((p) => T0 + p * 10_000));
    for (let p = 0; p < 6; p++) {
      const values = Array.from({ length: 10 }, (_, i) => p * 10 + i);
      expect(range.samples[p]).toBe(10);
      expect(range.cpuPercent[p]).toBeCloseTo(average(values), 10);
      expect(range.requestRate[p]).toBeCloseTo(average(values) * 10, 10);
      expect(range.loadScore[p]).toBeCloseTo(average(values), 10);
      expect(range.loadScoreMax[p]).toBe(Math.max(...values));
      expect(range.replicas[p]).toBe(2);
    }
    await expect(
      metricsRange(db(), { proxyId: proxy.id, from: T0, to: T0, points: 6 }),
    ).rejects.toBeInstanceOf(InvalidInputError);
    await expect(
      metricsRange(db(), { proxyId: proxy.id, from: T0, to: T0 + 1, points: 0 }),
    ).rejects.toBeInstanceOf(InvalidInputError);
  });

  it("computes and returns only the fields asked for, with the values of the full range", async () => {
    const proxy = await newProxy(db());
    await insertSamples(
      db(),
      Array.from({ length: 60 }, (_, i) => row(proxy.id, T0 + i * 1000, i, { replicas: 2 + (i % 3) })),
    );
    const window = { proxyId: proxy.id, from: T0, to: T0 + 60_000, points: 7 };
    const full = await metricsRange(db(), window);
    expect(Object.keys(full).sort()).toEqual(["at", "samples", ...METRICS_RANGE_FIELDS].sort());
    for (const fields of [
      ["replicas", "cpuPercent"],
      ["loadScoreMax"],
      ["cpuPercent", "memoryPercent", "requestRate", "avgLatencyMs", "loadScore", "replicas"],
    ] as const) {
      const subset = await metricsRange(db(), { ...window, fields });
      expect(Object.keys(subset).sort(), fields.join()).toEqual(["at", "samples", ...fields].sort());
      expect(subset.at).toEqual(full.at);
      expect(subset.samples).toEqual(full.samples);
      for (const name of fields) expect(subset[name], name).toEqual(full[name]);
    }
    const none = await metricsRange(db(), {
      ...window,
      from: T0 - 60_000,
      to: T0 - 1,
      fields: ["loadScore"],
    });
    expect(none).toEqual({ at: [], samples: [], loadScore: [] });
  });

  it("leaves out empty intervals and rounds values to 0.001", async () => {
    const proxy = await newProxy(db());
    await insertSamples(db(), [
      { ...row(proxy.id, T0 + 1000, 1), sample: sample(T0 + 1000, 1, { cpuPercent: 33.33333333 }) },
      row(proxy.id, T0 + 41_000, 2, { replicas: 3 }),
    ]);
    const range = await metricsRange(db(), { proxyId: proxy.id, from: T0, to: T0 + 60_000, points: 6 });
    expect(range.at).toEqual([T0, T0 + 40_000]);
    expect(range.cpuPercent[0]).toBe(33.333);
    expect(range.replicas).toEqual([2, 3]);
    const none = await metricsRange(db(), { proxyId: proxy.id, from: T0 - 60_000, to: T0, points: 6 });
    expect(none).toMatchObject({ at: [], samples: [], cpuPercent: [], replicas: [] });
  });

  it("rolls up complete minutes exactly, counts late samples, and re-running changes nothing", async () => {
    await inFreshSchema(database(), async (tx) => {
      const proxy = await newProxy(tx);
      // Three minutes of 10-second samples, values 0..17; plus one sample in the unfinished 4th minute.
      const values = Array.from({ length: 18 }, (_, i) => i);
      await insertSamples(tx, [
        ...values.map((v) => row(proxy.id, T0 + v * 10_000, v, { replicas: v < 6 ? 2 : 3 })),
        row(proxy.id, T0 + 3 * MINUTE + 5_000, 50),
      ]);
      const first = await rollupMetrics(tx, { now: T0 + 3 * MINUTE + 30_000 });
      expect(first).toEqual({ buckets: 3, rolledUpTo: new Date(T0 + 3 * MINUTE) });
      const buckets = () =>
        queryRows<{
          bucket: number;
          samples: number;
          cpu_avg: number;
          cpu_max: number;
          load_avg: number;
          replicas_avg: number;
          replicas_max: number;
        }>(
          tx,
          sql`select round(extract(epoch from bucket) * 1000)::float8 as bucket, samples,
                cpu_percent_avg as cpu_avg, cpu_percent_max as cpu_max, load_score_avg as load_avg,
                replicas_avg, replicas_max
              from proxy_load_metrics_1m order by bucket`,
        );
      expect(await buckets()).toEqual([
        { bucket: T0, samples: 6, cpu_avg: 2.5, cpu_max: 5, load_avg: 2.5, replicas_avg: 2, replicas_max: 2 },
        {
          bucket: T0 + MINUTE,
          samples: 6,
          cpu_avg: 8.5,
          cpu_max: 11,
          load_avg: 8.5,
          replicas_avg: 3,
          replicas_max: 3,
        },
        {
          bucket: T0 + 2 * MINUTE,
          samples: 6,
          cpu_avg: 14.5,
          cpu_max: 17,
          load_avg: 14.5,
          replicas_avg: 3,
          replicas_max: 3,
        },
      ]);
      // A late sample in the first minute (within the lateness window) is counted by the next run.
      await insertSamples(tx, [row(proxy.id, T0 + 55_000, 30)]);
      const second = await rollupMetrics(tx, { now: T0 + 4 * MINUTE + 1_000 });
      expect(second.rolledUpTo).toEqual(new Date(T0 + 4 * MINUTE));
      const after = await buckets();
      expect(after).toHaveLength(4);
      expect(after[0]).toMatchObject({ samples: 7, cpu_avg: (15 + 30) / 7, cpu_max: 30 });
      expect(after[3]).toMatchObject({ bucket: T0 + 3 * MINUTE, samples: 1, cpu_avg: 50 });
      await rollupMetrics(tx, { now: T0 + 4 * MINUTE + 2_000 });
      expect(await buckets()).toEqual(after);
    });
  });

  it("prunes raw samples after 7 days and rollups after 90, keeping ranges readable from rollups", async () => {
    await inFreshSchema(database(), async (tx) => {
      const proxy = await newProxy(tx);
      const old = Array.from({ length: 12 }, (_, i) => row(proxy.id, T0 + i * 10_000, i));
      const recent = Array.from({ length: 3 }, (_, i) => row(proxy.id, T0 + 7 * DAY + i * 10_000, 40 + i));
      await insertSamples(tx, [...old, ...recent]);
      const before = await metricsRange(tx, { proxyId: proxy.id, from: T0, to: T0 + 2 * MINUTE, points: 2 });

      const week = await pruneMetrics(tx, { now: T0 + 7 * DAY + 30 * MINUTE });
      expect(week).toMatchObject({ rawDeleted: 12, rollupsDeleted: 0, latestDeleted: 0 });
      expect(await count(tx, "proxy_load_metrics")).toBe(3);
      expect(await count(tx, "proxy_load_metrics_1m")).toBe(3);
      // The pruned minutes now come from rollups, with the same numbers.
      const fromRollups = await metricsRange(tx, {
        proxyId: proxy.id,
        from: T0,
        to: T0 + 2 * MINUTE,
        points: 2,
      });
      expectSameColumns(fromRollups, before);
      expect(fromRollups.samples).toEqual([6, 6]);

      const quarter = await pruneMetrics(tx, { now: T0 + 91 * DAY });
      expect(quarter).toMatchObject({ rawDeleted: 3, rollupsDeleted: 2, latestDeleted: 1 });
      expect(await count(tx, "proxy_load_metrics_1m")).toBe(1);
      const custom = await pruneMetrics(tx, { now: T0 + 91 * DAY, rollupRetentionDays: 1 });
      expect(custom.rollupsDeleted).toBe(1);
      await expect(pruneMetrics(tx, { now: T0, rawRetentionDays: 0 })).rejects.toBeInstanceOf(
        InvalidInputError,
      );
    });
  });

  describe("live instance cap", () => {
    const at = (id: string | undefined, when: number): SampleInput["sample"] =>
      sample(when, 10, id === undefined ? {} : { instanceId: id });
    const push = (proxyId: string, ids: Array<string | undefined>, when = T0): CappedPush => ({
      proxyId,
      rows: ids.map((id) => ({ proxyId, sample: at(id, when), loadScore: 10 })),
    });
    const instancesOf = async (proxyId: string) =>
      (await latestSamples(db(), { proxyIds: [proxyId] })).get(proxyId)!.map((s) => s.instanceId);

    it("refuses a push whole that would take its proxy past the cap, and stores the batch's other pushes", async () => {
      const proxy = await newProxy(db());
      const caps = new Map([[proxy.id, { cap: 3, liveSince: T0 - MINUTE }]]);
      await insertCappedSamples(db(), { pushes: [push(proxy.id, ["a", "b"])], caps });
      const admissions = await insertCappedSamples(db(), {
        pushes: [
          push(proxy.id, ["c", undefined], T0 + 1000),
          push(proxy.id, ["a", "d", "e"], T0 + 2000),
          push(proxy.id, ["a", "b", "c"], T0 + 3000),
        ],
        caps,
      });
      expect(admissions).toEqual([
        { admitted: true },
        { admitted: false, cap: 3, live: 3, wouldBe: 5, added: 2 },
        { admitted: true },
      ]);
      expect(await instancesOf(proxy.id)).toEqual([undefined, "a", "b", "c"]);
      // Nothing of the refused push reached the raw table either (its "a" at T0 + 2000 included).
      const [raw] = await queryRows<{ n: number }>(
        db(),
        sql`select count(*)::int as n from proxy_load_metrics
            where proxy_id = ${proxy.id}::uuid and recorded_at = ${new Date(T0 + 2000).toISOString()}::timestamptz`,
      );
      expect(raw!.n).toBe(0);
    });

    it("counts only instances whose latest sample is at or after liveSince, so stale names free their slots", async () => {
      const proxy = await newProxy(db());
      await insertSamples(db(), push(proxy.id, ["old-1", "old-2"], T0).rows);
      const caps = new Map([[proxy.id, { cap: 2, liveSince: T0 + 1 }]]);
      const admissions = await insertCappedSamples(db(), {
        pushes: [push(proxy.id, ["new-1", "new-2"], T0 + 5000), push(proxy.id, ["new-3"], T0 + 5000)],
        caps,
      });
      expect(admissions.map((a) => a.admitted)).toEqual([true, false]);
      expect(await instancesOf(proxy.id)).toEqual(["new-1", "new-2", "old-1", "old-2"]);
    });

    it("never takes a proxy past its cap with concurrent pushes that each add instances", async () => {
      const proxy = await newProxy(db());
      const caps = new Map([[proxy.id, { cap: 5, liveSince: T0 - MINUTE }]]);
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          insertCappedSamples(db(), { pushes: [push(proxy.id, [`pod-${i}`])], caps }),
        ),
      );
      expect(results.flat().filter((a) => a.admitted)).toHaveLength(5);
      expect(await instancesOf(proxy.id)).toHaveLength(5);
    });
  });

  it("pages a proxy's latest samples by instance id, the fleet-average sample first, and refuses a foreign cursor", async () => {
    const proxy = await newProxy(db());
    const ids = ["pod-b", "pod-a", "Pod-Z", "pod-é", "pod-c", "pod-d", "pod-e"];
    await insertSamples(db(), [
      row(proxy.id, T0, 1),
      ...ids.map((instanceId, i) => ({
        proxyId: proxy.id,
        sample: sample(T0 + i, i, { instanceId }),
        loadScore: i,
      })),
    ]);
    const seen: Array<string | undefined> = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    do {
      const page: Page<LatestSample> = await latestSamplesPage(db(), { proxyId: proxy.id, limit: 3, cursor });
      seen.push(...page.items.map((s) => s.instanceId));
      sizes.push(page.items.length);
      cursor = page.nextCursor;
    } while (cursor);
    expect(sizes).toEqual([3, 3, 2]);
    expect(seen).toEqual([undefined, "Pod-Z", "pod-a", "pod-b", "pod-c", "pod-d", "pod-e", "pod-é"]);
    expect((await latestSamplesPage(db(), { proxyId: proxy.id })).items).toHaveLength(8);
    await expect(latestSamplesPage(db(), { proxyId: proxy.id, cursor: "bm9wZQ" })).rejects.toThrow(/cursor/);
    await expect(latestSamplesPage(db(), { proxyId: proxy.id, limit: 501 })).rejects.toThrow(/limit/);
  });

  it("retention deletes instances not live for twice metricsMaxAgeSeconds, keeping each proxy's newest and fleet rows", async () => {
    await inFreshSchema(database(), async (tx) => {
      const quick = await newProxy(tx);
      await upsertPolicy(tx, {
        proxyId: quick.id,
        policy: parsePolicy({ minReplicas: 1, maxReplicas: 5, metricsMaxAgeSeconds: 10 }),
        actorId: "test",
      });
      const usual = await newProxy(tx);
      const quiet = await newProxy(tx);
      const now = T0 + 10 * MINUTE;
      const put = (proxyId: string, instanceId: string | undefined, ageMs: number) => ({
        proxyId,
        sample: sample(now - ageMs, 1, instanceId === undefined ? {} : { instanceId }),
        loadScore: 1,
      });
      await insertSamples(tx, [
        // quick: live for 20 s.
        put(quick.id, "fresh", 5_000),
        put(quick.id, "stale", 25_000),
        put(quick.id, undefined, 9 * MINUTE),
        // usual (default 60 s): live for 120 s.
        put(usual.id, "fresh", 100_000),
        put(usual.id, "stale", 130_000),
        // quiet: stopped reporting; its newest row stays.
        put(quiet.id, "last", 5 * MINUTE),
        put(quiet.id, "before", 6 * MINUTE),
      ]);
      expect(await pruneStaleInstances(tx, { now, pageSize: 2 })).toBe(3);
      const left = await latestSamples(tx, { proxyIds: [quick.id, usual.id, quiet.id] });
      expect(left.get(quick.id)!.map((s) => s.instanceId)).toEqual([undefined, "fresh"]);
      expect(left.get(usual.id)!.map((s) => s.instanceId)).toEqual(["fresh"]);
      expect(left.get(quiet.id)!.map((s) => s.instanceId)).toEqual(["last"]);
      expect(await pruneStaleInstances(tx, { now })).toBe(0);
    });
  });
});
