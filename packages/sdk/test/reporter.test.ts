import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { availableParallelism } from "node:os";
import { gunzipSync } from "node:zlib";
import { type LoadMetrics, loadMetricsSchema } from "@proxyscale/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MetricsPushError, MetricsReporter } from "../src/reporter.ts";

interface ReceivedPush {
  path: string;
  authorization: string | undefined;
  samples: unknown[];
  at: number;
}

/** A real HTTP endpoint standing in for ProxyScale's batch metrics path; `answer` decides each status. */
async function startMetricsServer(answer: (index: number) => number = () => 201) {
  const received: ReceivedPush[] = [];
  let requests = 0;
  const server: Server = createServer(async (req: IncomingMessage, res) => {
    const body = await readBody(req);
    const status = answer(requests++);
    if (status < 300) {
      received.push({
        path: req.url ?? "",
        authorization: req.headers.authorization,
        samples: (JSON.parse(body) as { samples: unknown[] }).samples,
        at: Date.now(),
      });
    }
    res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ status }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const attempts = () => requests;
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${port}`, received, attempts, server };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** How long a wait for the reporter's timers and pushes may take on a loaded machine. */
const WAIT = { timeout: 5_000, interval: 10 };

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function reporter(options: ConstructorParameters<typeof MetricsReporter>[0]) {
  const created = new MetricsReporter(options);
  cleanups.push(() => created.stop());
  return created;
}

describe("MetricsReporter", () => {
  it("aggregates recorded requests into samples that satisfy loadMetricsSchema", async () => {
    const metrics = await startMetricsServer();
    const errors: Error[] = [];
    const subject = reporter({
      http: { url: metrics.url, token: "tok-123", proxyId: "edge/1" },
      instanceId: "edge-1",
      sampleIntervalMs: 200,
      onError: (error) => errors.push(error),
    }).start();
    for (let i = 0; i < 8; i++) subject.recordRequest(20, true);
    subject.recordRequest(40, false);
    subject.recordRequest(40, false);

    await expect.poll(() => metrics.received.length, WAIT).toBeGreaterThanOrEqual(1);
    const first = metrics.received[0]!;
    expect(first.path).toBe("/api/proxy/scaling/metrics/edge%2F1/batch");
    expect(first.authorization).toBe("Bearer tok-123");
    expect(first.samples).toHaveLength(1);
    const sample = loadMetricsSchema.parse(first.samples[0]);
    expect(sample.instanceId).toBe("edge-1");
    expect(sample.avgLatencyMs).toBe(24);
    expect(sample.errorRatePercent).toBe(20);
    // 10 requests in one ~200 ms window: about 50 per second. Timers have 1 ms granularity, so the window
    // may measure a fraction of a millisecond short of 200 ms.
    expect(sample.requestRate).toBeGreaterThan(10);
    expect(sample.requestRate).toBeLessThanOrEqual(10 / 0.199);
    expect(sample.memoryPercent).toBeGreaterThan(0);
    expect(typeof sample.recordedAt).toBe("number");
    expect(errors).toEqual([]);
  });

  it("measures this process's CPU time over wall time, per core", async () => {
    // The test owns both clocks: wall time (performance.now) and this process's CPU time (process.cpuUsage,
    // which subtracts the reading it is given), so each window's share is known exactly.
    let wallMs = 1_000;
    let cpuMicros = 5_000_000;
    const wall = vi.spyOn(performance, "now").mockImplementation(() => wallMs);
    const cpu = vi.spyOn(process, "cpuUsage").mockImplementation((previous) => {
      const total = { user: (cpuMicros * 3) / 4, system: cpuMicros / 4 };
      return previous ? { user: total.user - previous.user, system: total.system - previous.system } : total;
    });
    try {
      const subject = reporter({ send: async () => {}, sampleIntervalMs: 60_000 }).start();
      wallMs += 300;
      cpuMicros += 240_000;
      const busy = subject.sampleNow();
      wallMs += 300;
      cpuMicros += 3_000;
      const idle = subject.sampleNow();
      const cores = availableParallelism();
      // 240 ms of CPU (user and system) in 300 ms of wall time, then 3 ms in the next 300 ms.
      expect(busy?.cpuPercent).toBeCloseTo(80 / cores, 2);
      expect(idle?.cpuPercent).toBeCloseTo(1 / cores, 2);
      // Stopped while the clocks are still the test's, so its last window is judged by them too.
      await subject.stop();
    } finally {
      wall.mockRestore();
      cpu.mockRestore();
    }
  });

  it("pushes buffered samples in batches no larger than maxBatchSize", async () => {
    const batches: LoadMetrics[][] = [];
    let seq = 0;
    const subject = reporter({
      send: async (samples) => void batches.push(samples),
      maxBatchSize: 3,
      sampleIntervalMs: 60_000,
      extra: () => ({ custom: { seq: seq++ } }),
    });
    for (let i = 0; i < 7; i++) subject.sampleNow();
    await subject.flush();
    expect(batches.map((batch) => batch.length)).toEqual([3, 3, 1]);
    expect(batches.flat().map((sample) => sample.custom?.seq)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(subject.stats()).toMatchObject({ samplesSent: 7, buffered: 0, pushes: 3 });
  });

  it("backs off exponentially while the server answers 5xx, then delivers everything", async () => {
    const metrics = await startMetricsServer((index) => (index < 3 ? 503 : 201));
    const attemptTimes: number[] = [];
    const subject = reporter({
      send: async (samples) => {
        attemptTimes.push(performance.now());
        const response = await fetch(`${metrics.url}/api/proxy/scaling/metrics/p/batch`, {
          method: "POST",
          body: JSON.stringify({ samples }),
        });
        if (!response.ok) throw new MetricsPushError(`status ${response.status}`, { retryable: true });
      },
      sampleIntervalMs: 60_000,
      pushIntervalMs: 20,
      backoff: { initialMs: 100, maxMs: 10_000, jitter: 0 },
    }).start();
    subject.sampleNow();

    // The reporter's counters change when the response arrives, after the server has counted the request.
    await expect.poll(() => subject.stats().samplesSent, WAIT).toBe(1);
    expect(metrics.received).toHaveLength(1);
    expect(metrics.attempts()).toBe(4);
    const gaps = attemptTimes.slice(1).map((time, index) => time - attemptTimes[index]!);
    // Timers never fire early (1 ms rounding aside): each gap is at least its backoff step.
    expect(gaps[0]).toBeGreaterThanOrEqual(99);
    expect(gaps[1]).toBeGreaterThanOrEqual(199);
    expect(gaps[2]).toBeGreaterThanOrEqual(399);
    expect(subject.stats()).toMatchObject({
      failedPushes: 3,
      consecutiveFailures: 0,
      samplesSent: 1,
      buffered: 0,
    });
  });

  it("drops the oldest samples past the buffer bound and counts them", async () => {
    let serverUp = false;
    const metrics = await startMetricsServer(() => (serverUp ? 201 : 503));
    let seq = 0;
    const subject = reporter({
      http: { url: metrics.url, token: "t", proxyId: "p" },
      sampleIntervalMs: 60_000,
      maxBufferedSamples: 5,
      extra: () => ({ custom: { seq: seq++ } }),
    });
    for (let i = 0; i < 12; i++) subject.sampleNow();
    await subject.flush();
    expect(subject.stats()).toMatchObject({
      samplesDropped: 7,
      buffered: 5,
      samplesSent: 0,
      failedPushes: 1,
    });

    serverUp = true;
    await subject.flush();
    const delivered = metrics.received
      .flatMap((push) => push.samples)
      .map((sample) => loadMetricsSchema.parse(sample).custom?.seq);
    expect(delivered).toEqual([7, 8, 9, 10, 11]);
    expect(metrics.received).toHaveLength(1);
    expect(subject.stats()).toMatchObject({ samplesDropped: 7, buffered: 0, samplesSent: 5 });
  });

  it("sends one POST per batch with the default sender, and retries a failed batch whole", async () => {
    const metrics = await startMetricsServer((index) => (index === 1 ? 500 : 201));
    let seq = 0;
    const subject = reporter({
      http: { url: metrics.url, token: "t", proxyId: "p" },
      sampleIntervalMs: 60_000,
      maxBatchSize: 3,
      extra: () => ({ custom: { seq: seq++ } }),
    });
    for (let i = 0; i < 7; i++) subject.sampleNow();
    await subject.flush();
    expect(metrics.attempts()).toBe(2);
    expect(subject.stats()).toMatchObject({ samplesSent: 3, buffered: 4, failedPushes: 1 });
    await subject.flush();
    const batches = metrics.received.map((push) =>
      push.samples.map((sample) => loadMetricsSchema.parse(sample).custom?.seq),
    );
    expect(batches).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    expect(metrics.attempts()).toBe(4);
  });

  it("gzips each batch with http.gzip, saying so in Content-Encoding", async () => {
    const seen: Array<{ encoding: string | undefined; samples: number }> = [];
    const server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const raw = Buffer.concat(chunks);
      const text = req.headers["content-encoding"] === "gzip" ? gunzipSync(raw).toString() : raw.toString();
      seen.push({
        encoding: req.headers["content-encoding"],
        samples: (JSON.parse(text) as { samples: unknown[] }).samples.length,
      });
      res.writeHead(201).end("{}");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const gzip of [true, false]) {
      const subject = reporter({ http: { url, token: "t", proxyId: "p", gzip }, sampleIntervalMs: 60_000 });
      subject.sampleNow();
      subject.sampleNow();
      await subject.flush();
    }
    expect(seen).toEqual([
      { encoding: "gzip", samples: 2 },
      { encoding: undefined, samples: 2 },
    ]);
  });

  it("keeps samples a sender reports as accepted before a failure out of the retry", async () => {
    const delivered: number[] = [];
    let failOnce = true;
    let seq = 0;
    const subject = reporter({
      send: async (samples) => {
        const seqs = samples.map((sample) => sample.custom?.seq ?? -1);
        if (failOnce) {
          failOnce = false;
          delivered.push(...seqs.slice(0, 2));
          throw new MetricsPushError("third sample failed", { retryable: true, accepted: 2 });
        }
        delivered.push(...seqs);
      },
      sampleIntervalMs: 60_000,
      extra: () => ({ custom: { seq: seq++ } }),
    });
    for (let i = 0; i < 4; i++) subject.sampleNow();
    await subject.flush();
    expect(subject.stats()).toMatchObject({ samplesSent: 2, buffered: 2 });
    await subject.flush();
    expect(delivered).toEqual([0, 1, 2, 3]);
    expect(subject.stats()).toMatchObject({ samplesSent: 4, buffered: 0 });
  });

  it("drops a batch the server rejects with a 4xx instead of retrying it forever", async () => {
    const metrics = await startMetricsServer(() => 400);
    const subject = reporter({
      http: { url: metrics.url, token: "t", proxyId: "p" },
      sampleIntervalMs: 60_000,
    });
    subject.sampleNow();
    subject.sampleNow();
    await subject.flush();
    await subject.flush();
    expect(metrics.attempts()).toBe(1);
    expect(subject.stats()).toMatchObject({
      samplesRejected: 2,
      buffered: 0,
      lastError: expect.stringContaining("400"),
    });
  });

  it("never throws to the caller, whatever fails", async () => {
    const errors: string[] = [];
    const subject = reporter({
      http: { url: "http://127.0.0.1:1", token: "t", proxyId: "p", timeoutMs: 500 },
      sampleIntervalMs: 50,
      backoff: { initialMs: 20, maxMs: 40 },
      extra: () => {
        throw new Error("custom metrics provider broke");
      },
      onError: (error) => {
        errors.push(error.message);
        throw new Error("and so did the error handler");
      },
    }).start();
    expect(() => {
      subject.recordRequest(Number.NaN, true);
      subject.recordRequest(-5, false);
      subject.recordRequest(Number.POSITIVE_INFINITY);
    }).not.toThrow();
    const sample = subject.sampleNow();
    expect(sample?.avgLatencyMs).toBe(0);
    expect(sample?.errorRatePercent).toBeCloseTo(33.33, 1);
    await expect.poll(() => subject.stats().failedPushes, WAIT).toBeGreaterThanOrEqual(2);
    expect(errors.some((message) => message.includes("custom metrics provider broke"))).toBe(true);
    expect(errors.some((message) => message.includes("metrics push to http://127.0.0.1:1 failed"))).toBe(
      true,
    );
    await expect(subject.stop()).resolves.toMatchObject({ samplesSent: 0 });

    const throwing = reporter({
      send: () => {
        throw new Error("synchronous sender failure");
      },
      sampleIntervalMs: 60_000,
    });
    throwing.sampleNow();
    await expect(throwing.flush()).resolves.toBeUndefined();
    expect(throwing.stats()).toMatchObject({ buffered: 1, lastError: "synchronous sender failure" });
  });

  it("flushes the last window on stop", async () => {
    const metrics = await startMetricsServer();
    const subject = reporter({
      http: { url: metrics.url, token: "t", proxyId: "p" },
      sampleIntervalMs: 60_000,
    }).start();
    subject.recordRequest(12, true);
    subject.recordRequest(18, true);
    expect(metrics.received).toHaveLength(0);

    const stats = await subject.stop();
    expect(stats).toMatchObject({ samplesTaken: 1, samplesSent: 1, buffered: 0 });
    expect(loadMetricsSchema.parse(metrics.received[0]?.samples[0]).avgLatencyMs).toBe(15);
  });

  it("refuses to start without a destination", () => {
    expect(() => new MetricsReporter({})).toThrow("MetricsReporter needs `send` or `http`");
  });
});
