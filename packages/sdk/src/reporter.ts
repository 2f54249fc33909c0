import { readFileSync } from "node:fs";
import os from "node:os";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { exponentialBackoffMs, type LoadMetrics, loadMetricsSchema } from "@proxyscale/core";

/** Delivers one batch. Resolve when every sample was accepted; throw `MetricsPushError` to say more. */
export type MetricsSender = (samples: LoadMetrics[]) => Promise<void>;

/** A failed push. `accepted` samples at the batch's head were delivered before the failure. */
export class MetricsPushError extends Error {
  readonly retryable: boolean;
  readonly status: number | undefined;
  readonly accepted: number;

  constructor(message: string, options: { retryable: boolean; status?: number; accepted?: number }) {
    super(message);
    this.name = "MetricsPushError";
    this.retryable = options.retryable;
    this.status = options.status;
    this.accepted = options.accepted ?? 0;
  }
}

const gzipAsync = promisify(gzip);

export interface HttpMetricsSenderOptions {
  /** ProxyScale's base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  token: string;
  proxyId: string;
  /** Per request. Default 10 s. */
  timeoutMs?: number;
  /**
   * Gzip each batch's body (`Content-Encoding: gzip`): a 5,000-sample batch of about 1 MiB shrinks about tenfold.
   * Needs a server that decodes it (this version on); an older one answers 400. Default false.
   */
  gzip?: boolean;
}

/**
 * The default sender: one `POST /api/proxy/scaling/metrics/:proxyId/batch` per batch. The server stores a batch
 * in one statement, so a batch is accepted whole or not at all. 408, 429, 5xx and network errors are retryable;
 * any other status rejects the batch. The server takes at most 5,000 samples per batch.
 */
export function createHttpMetricsSender(options: HttpMetricsSenderOptions): MetricsSender {
  const endpoint = new URL(
    `api/proxy/scaling/metrics/${encodeURIComponent(options.proxyId)}/batch`,
    withSlash(options.url),
  );
  const timeoutMs = options.timeoutMs ?? 10_000;
  return async (samples) => {
    const json = JSON.stringify({ samples });
    const headers: Record<string, string> = {
      "content-type": "application/json",
      authorization: `Bearer ${options.token}`,
    };
    if (options.gzip) headers["content-encoding"] = "gzip";
    const body = options.gzip ? await gzipAsync(json) : json;
    let response: Response;
    try {
      response = await fetch(endpoint, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new MetricsPushError(`metrics push to ${endpoint.origin} failed: ${describe(error)}`, {
        retryable: true,
      });
    }
    const detail = await response.text().catch(() => "");
    if (!response.ok) {
      const status = response.status;
      throw new MetricsPushError(`metrics push answered ${status}: ${detail.slice(0, 300)}`, {
        retryable: status === 408 || status === 429 || status >= 500,
        status,
      });
    }
  };
}

export interface MetricsReporterOptions {
  /** Where batches go. Give this, or `http` for the default REST sender. */
  send?: MetricsSender;
  http?: HttpMetricsSenderOptions;
  /** Set on every sample, so the server tells replicas apart. */
  instanceId?: string;
  /** Length of the window one sample covers. Default 5 s. */
  sampleIntervalMs?: number;
  /** How often buffered samples are pushed. Default: the sample interval. */
  pushIntervalMs?: number;
  /** The buffer's bound; past it the oldest samples are dropped and counted. Default 720. */
  maxBufferedSamples?: number;
  /** Samples per `send` call. Default 100; the default sender's server takes at most 5,000. */
  maxBatchSize?: number;
  /** Retry delays after failed pushes: doubling from `initialMs` up to `maxMs`. Default 1 s to 60 s. */
  backoff?: { initialMs?: number; maxMs?: number; jitter?: number };
  /** Memory percent is RSS over this. Default: the cgroup limit when there is one, else total memory. */
  memoryLimitBytes?: number;
  /** Extra fields for each sample (custom metrics, replica counts). Called at sampling time. */
  extra?: () => Pick<LoadMetrics, "custom" | "replicas" | "unhealthyReplicas">;
  /** Told about every failure; the reporter itself never throws to its caller. */
  onError?: (error: Error) => void;
  /** `stop()` gives up flushing after this long. Default 5 s. */
  stopTimeoutMs?: number;
}

export interface MetricsReporterStats {
  requestsRecorded: number;
  samplesTaken: number;
  samplesSent: number;
  /** Dropped oldest-first because the buffer was full. */
  samplesDropped: number;
  /** Refused by the server with a non-retryable status, or invalid before sending. */
  samplesRejected: number;
  buffered: number;
  pushes: number;
  failedPushes: number;
  consecutiveFailures: number;
  lastError: string | undefined;
}

interface RequestWindow {
  count: number;
  errors: number;
  latencySumMs: number;
  startedAt: number;
  cpu: NodeJS.CpuUsage;
}

/**
 * Samples this process's CPU and memory, aggregates the requests it is handed, and pushes batches of
 * `loadMetricsSchema` samples in the background. Record methods are synchronous and O(1); nothing it does
 * throws to the caller.
 */
export class MetricsReporter {
  private readonly send: MetricsSender;
  private readonly sampleIntervalMs: number;
  private readonly pushIntervalMs: number;
  private readonly maxBuffered: number;
  private readonly maxBatch: number;
  private readonly backoff: { initialMs: number; maxMs: number; jitter: number };
  private readonly memoryLimitBytes: number;
  private readonly cores = os.availableParallelism();
  private buffer: LoadMetrics[] = [];
  private window: RequestWindow;
  private sampleTimer: NodeJS.Timeout | undefined;
  private pushTimer: NodeJS.Timeout | undefined;
  private pushing: Promise<void> | undefined;
  private running = false;
  private readonly counters = {
    requestsRecorded: 0,
    samplesTaken: 0,
    samplesSent: 0,
    samplesDropped: 0,
    samplesRejected: 0,
    pushes: 0,
    failedPushes: 0,
    consecutiveFailures: 0,
    lastError: undefined as string | undefined,
  };

  constructor(private readonly options: MetricsReporterOptions) {
    if (options.send) this.send = options.send;
    else if (options.http) this.send = createHttpMetricsSender(options.http);
    else throw new Error("MetricsReporter needs `send` or `http` ({ url, token, proxyId })");
    this.sampleIntervalMs = positive(options.sampleIntervalMs, 5_000);
    this.pushIntervalMs = positive(options.pushIntervalMs, this.sampleIntervalMs);
    this.maxBuffered = positive(options.maxBufferedSamples, 720);
    this.maxBatch = positive(options.maxBatchSize, 100);
    this.backoff = {
      initialMs: positive(options.backoff?.initialMs, 1_000),
      maxMs: positive(options.backoff?.maxMs, 60_000),
      jitter: options.backoff?.jitter ?? 0.2,
    };
    this.memoryLimitBytes = positive(options.memoryLimitBytes, cgroupMemoryLimit() ?? os.totalmem());
    this.window = this.newWindow();
  }

  /** Starts sampling and pushing. Timers are unref'd: the reporter never keeps a process alive. */
  start(): this {
    if (this.running) return this;
    this.running = true;
    this.window = this.newWindow();
    this.sampleTimer = setInterval(() => this.sampleNow(), this.sampleIntervalMs).unref();
    this.schedulePush(this.pushIntervalMs);
    return this;
  }

  /** One finished request. `ok` false counts it as an error. Never throws. */
  recordRequest(latencyMs: number, ok = true): void {
    const latency = Number.isFinite(latencyMs) && latencyMs > 0 ? latencyMs : 0;
    this.window.count += 1;
    this.window.latencySumMs += latency;
    if (!ok) this.window.errors += 1;
    this.counters.requestsRecorded += 1;
  }

  /** Closes the current window into a sample and buffers it. Returns the sample, or undefined if invalid. */
  sampleNow(): LoadMetrics | undefined {
    const window = this.window;
    this.window = this.newWindow();
    const wallMs = Math.max(1, performance.now() - window.startedAt);
    const cpu = process.cpuUsage(window.cpu);
    const cpuPercent = ((cpu.user + cpu.system) / 1000 / wallMs / this.cores) * 100;
    const memoryPercent = (process.memoryUsage.rss() / this.memoryLimitBytes) * 100;
    let extra: ReturnType<NonNullable<MetricsReporterOptions["extra"]>> = {};
    try {
      extra = this.options.extra?.() ?? {};
    } catch (error) {
      this.reportError(new Error(`metrics reporter extra() failed: ${describe(error)}`));
    }
    const candidate = {
      cpuPercent: round(clamp(cpuPercent, 0, 100)),
      memoryPercent: round(clamp(memoryPercent, 0, 100)),
      requestRate: round(window.count / (wallMs / 1000)),
      avgLatencyMs: round(window.count === 0 ? 0 : window.latencySumMs / window.count),
      errorRatePercent: round(window.count === 0 ? 0 : (window.errors / window.count) * 100),
      ...extra,
      ...(this.options.instanceId === undefined ? {} : { instanceId: this.options.instanceId }),
      recordedAt: Date.now(),
    };
    this.counters.samplesTaken += 1;
    const parsed = loadMetricsSchema.safeParse(candidate);
    if (!parsed.success) {
      this.counters.samplesRejected += 1;
      const fields = parsed.error.issues
        .map((issue) => `${issue.path.join(".")}: ${issue.message}`)
        .join("; ");
      this.reportError(new Error(`metrics sample is invalid: ${fields}`));
      return undefined;
    }
    this.enqueue([parsed.data], "tail");
    return parsed.data;
  }

  /** Pushes everything buffered now (waiting for a push in flight). Failures leave samples buffered. */
  async flush(): Promise<void> {
    while (this.pushing) await this.pushing;
    await this.pushBuffered(false);
  }

  /**
   * Stops the timers, closes the current window when it covers at least half an interval (a shorter one
   * would give a noisy rate), and flushes, within `stopTimeoutMs`. Never throws.
   */
  async stop(): Promise<MetricsReporterStats> {
    const wasRunning = this.running;
    this.running = false;
    clearInterval(this.sampleTimer);
    clearTimeout(this.pushTimer);
    const windowMs = performance.now() - this.window.startedAt;
    if (wasRunning && (this.window.count > 0 || windowMs >= this.sampleIntervalMs / 2)) this.sampleNow();
    const deadline = new Promise<void>((resolve) =>
      setTimeout(resolve, positive(this.options.stopTimeoutMs, 5_000)).unref(),
    );
    await Promise.race([this.flush(), deadline]);
    return this.stats();
  }

  stats(): MetricsReporterStats {
    return { ...this.counters, buffered: this.buffer.length };
  }

  private newWindow(): RequestWindow {
    return { count: 0, errors: 0, latencySumMs: 0, startedAt: performance.now(), cpu: process.cpuUsage() };
  }

  private enqueue(samples: LoadMetrics[], where: "head" | "tail") {
    this.buffer = where === "tail" ? [...this.buffer, ...samples] : [...samples, ...this.buffer];
    const excess = this.buffer.length - this.maxBuffered;
    if (excess > 0) {
      this.buffer.splice(0, excess);
      this.counters.samplesDropped += excess;
    }
  }

  private schedulePush(delayMs: number) {
    if (!this.running) return;
    clearTimeout(this.pushTimer);
    this.pushTimer = setTimeout(() => {
      void this.pushBuffered(true).then(() => {
        const failures = this.counters.consecutiveFailures;
        this.schedulePush(
          failures === 0 ? this.pushIntervalMs : exponentialBackoffMs(failures, this.backoff),
        );
      });
    }, delayMs).unref();
  }

  /** Sends the buffer in batches, oldest first, stopping at the first retryable failure. */
  private pushBuffered(stopWhenHalted: boolean): Promise<void> {
    if (this.pushing) return this.pushing;
    const run = async () => {
      while (this.buffer.length > 0 && (this.running || !stopWhenHalted)) {
        const batch = this.buffer.splice(0, this.maxBatch);
        this.counters.pushes += 1;
        try {
          await this.send(batch);
          this.counters.samplesSent += batch.length;
          this.counters.consecutiveFailures = 0;
        } catch (error) {
          this.counters.failedPushes += 1;
          const pushError =
            error instanceof MetricsPushError
              ? error
              : new MetricsPushError(describe(error), { retryable: true });
          const accepted = clamp(pushError.accepted, 0, batch.length);
          this.counters.samplesSent += accepted;
          this.reportError(pushError);
          if (!pushError.retryable) {
            this.counters.samplesRejected += batch.length - accepted;
            continue;
          }
          this.counters.consecutiveFailures += 1;
          this.enqueue(batch.slice(accepted), "head");
          return;
        }
      }
    };
    this.pushing = run().finally(() => {
      this.pushing = undefined;
    });
    return this.pushing;
  }

  private reportError(error: Error) {
    this.counters.lastError = error.message;
    try {
      this.options.onError?.(error);
    } catch {
      // A failing error callback must not break the reporter either.
    }
  }
}

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function withSlash(url: string): string {
  return url.endsWith("/") ? url : `${url}/`;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}

/** cgroup v2's memory.max, when this process runs under a numeric limit (a container). */
function cgroupMemoryLimit(): number | undefined {
  try {
    const limit = Number(readFileSync("/sys/fs/cgroup/memory.max", "utf8").trim());
    return Number.isFinite(limit) && limit > 0 && limit < os.totalmem() ? limit : undefined;
  } catch {
    return undefined;
  }
}
