import { createSampleRecorder, type IngestRequest, type RecordedSample } from "@proxyscale/api";
import {
  type LoadMetrics,
  type MetricsSourceHealth,
  metricsSourceSchema,
  type PrometheusSource,
  readScrape,
  type Scrape,
  type ScrapeSource,
  type ScrapeTargetHealth,
  scrapedSample,
} from "@proxyscale/core";
import { parseExposition } from "@proxyscale/core/exposition";
import { type Db, type Logger, listSourcedProxies, type ProxyRecord, type Telemetry } from "@proxyscale/db";
import type { Actuator } from "../actuators/types.ts";
import { errorMessage } from "../actuators/types.ts";
import type { ControlLoop } from "../control/loop.ts";
import { SHARD_COUNT } from "../control/shards.ts";
import { queryPrometheusRound } from "./prometheus.ts";

/** Largest exposition read from one target: HAProxy's with a few hundred backends is a few MB. */
export const MAX_EXPOSITION_BYTES = 16 * 1024 * 1024;

export interface ScraperOptions {
  db: Db;
  logger: Logger;
  clock?: () => number;
  /** The shards whose proxies this server owns now (the control loop's leases). */
  heldShards: () => readonly number[];
  shardCount: number;
  /** The proxy's actuator, for targets `{ from: "actuator" }`. */
  actuatorFor: (proxy: ProxyRecord) => Promise<Actuator>;
  /** Stores samples as a push does (the same scoring, caps and insert) and tells the control loop. */
  record: (request: IngestRequest) => Promise<RecordedSample[]>;
  /** How often the list of scraped proxies is read again (new, changed, deleted, moved to another server). */
  refreshIntervalMs: number;
}

interface Target {
  instance: string;
  url: string;
}

interface Scraped {
  proxy: ProxyRecord;
  source: ScrapeSource | PrometheusSource;
  fingerprint: string;
  timer: NodeJS.Timeout;
  /** Each replica's last scrape that parsed: the base of the next interval's rates. */
  previous: Map<string, Scrape>;
  health: MetricsSourceHealth | null;
  round: Promise<void> | null;
}

/**
 * The `scrape` metrics source (docs/metrics-sources.md): for each proxy of this server's shards whose source is
 * `scrape`, every `intervalSeconds` each target's exposition is fetched with the source's timeout, parsed, read
 * through the mapping (core's readScrape and scrapedSample) and stored as one sample per replica through the push
 * path, so the control loop evaluates it as it arrives. A target that fails, hangs, answers garbage or has no
 * value for a mapped field gives its replica no sample for that interval (missing, so the stale-metrics fallback
 * applies), and its health says why. The same timers run the `prometheus` source's rounds of PromQL queries
 * (./prometheus.ts): only what a round collects differs between the two kinds.
 */
export class Scraper {
  private readonly clock: () => number;
  private readonly scraped = new Map<string, Scraped>();
  private refreshTimer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly options: ScraperOptions) {
    this.clock = options.clock ?? Date.now;
  }

  start(): void {
    if (this.refreshTimer || this.closed) return;
    this.refreshTimer = setInterval(() => void this.refresh(), this.options.refreshIntervalMs);
    this.refreshTimer.unref();
    void this.refresh();
  }

  /** The proxy's last round of scrapes, when this server scrapes it. */
  health(proxyId: string): MetricsSourceHealth | null {
    return this.scraped.get(proxyId)?.health ?? null;
  }

  /** Reads the scraped proxies of the held shards and starts, restarts or stops their scrapes to match. */
  refresh(): Promise<void> {
    this.refreshing ??= this.readProxies()
      .catch((error: unknown) =>
        this.options.logger.warn({ err: errorMessage(error) }, "scrape: listing the scraped proxies failed"),
      )
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  private async readProxies(): Promise<void> {
    const listed = { shards: this.options.heldShards(), shardCount: this.options.shardCount };
    const proxies = (
      await Promise.all([
        listSourcedProxies(this.options.db, { ...listed, kind: "scrape" }),
        listSourcedProxies(this.options.db, { ...listed, kind: "prometheus" }),
      ])
    ).flat();
    if (this.closed) return;
    const kept = new Set<string>();
    for (const proxy of proxies) {
      const parsed = metricsSourceSchema.safeParse(proxy.metricsSource);
      if (!parsed.success || parsed.data.kind === "push") continue;
      kept.add(proxy.id);
      const fingerprint = JSON.stringify(parsed.data);
      const existing = this.scraped.get(proxy.id);
      if (existing?.fingerprint === fingerprint) {
        existing.proxy = proxy;
        continue;
      }
      if (existing) this.stop(proxy.id);
      this.begin(proxy, parsed.data, fingerprint);
    }
    for (const proxyId of [...this.scraped.keys()]) if (!kept.has(proxyId)) this.stop(proxyId);
  }

  private begin(proxy: ProxyRecord, source: ScrapeSource | PrometheusSource, fingerprint: string): void {
    const entry: Scraped = {
      proxy,
      source,
      fingerprint,
      previous: new Map(),
      health: null,
      round: null,
      timer: setInterval(() => this.kick(entry), source.intervalSeconds * 1_000),
    };
    entry.timer.unref();
    this.scraped.set(proxy.id, entry);
    this.kick(entry);
  }

  private stop(proxyId: string): void {
    const entry = this.scraped.get(proxyId);
    if (!entry) return;
    clearInterval(entry.timer);
    this.scraped.delete(proxyId);
  }

  /** A round, unless the previous one still runs (a slow store): rounds of one proxy never overlap. */
  private kick(entry: Scraped): void {
    if (entry.round || this.closed) return;
    entry.round = this.round(entry)
      .catch((error: unknown) =>
        this.options.logger.warn(
          { proxyId: entry.proxy.id, err: errorMessage(error) },
          "scrape: storing the scraped samples failed",
        ),
      )
      .finally(() => {
        entry.round = null;
      });
  }

  /** One round: every target scraped (or every query run) at once, the samples stored together. */
  private async round(entry: Scraped): Promise<void> {
    const startedAt = this.clock();
    const { source } = entry;
    const { health, reports } =
      source.kind === "scrape"
        ? await this.scrapeRound(entry, source, startedAt)
        : await queryPrometheusRound(source, startedAt);
    entry.health = health;
    await this.store(entry, health, reports);
  }

  private async scrapeRound(
    entry: Scraped,
    source: ScrapeSource,
    startedAt: number,
  ): Promise<{ health: MetricsSourceHealth; reports: LoadMetrics[] }> {
    let targets: Target[];
    try {
      targets = await this.targetsOf(source, entry.proxy);
    } catch (error) {
      return {
        health: { kind: "scrape", lastScrapeAt: startedAt, error: errorMessage(error), targets: [] },
        reports: [],
      };
    }
    const results = await Promise.all(targets.map((target) => this.scrapeTarget(entry, source, target)));
    // Replicas gone from the list lose their base: a replica back under the same name starts afresh.
    const current = new Set(targets.map((target) => target.instance));
    for (const instance of [...entry.previous.keys()]) {
      if (!current.has(instance)) entry.previous.delete(instance);
    }
    const reports = results.flatMap((result) => (result.metrics ? [result.metrics] : []));
    const health: MetricsSourceHealth = {
      kind: "scrape",
      lastScrapeAt: startedAt,
      error: null,
      targets: results.map((result) => result.health),
    };
    return { health, reports };
  }

  /** Stores a round's samples, unless the proxy's source changed or left this server meanwhile. */
  private async store(entry: Scraped, health: MetricsSourceHealth, reports: LoadMetrics[]): Promise<void> {
    if (reports.length === 0 || this.closed || this.scraped.get(entry.proxy.id) !== entry) return;
    try {
      await this.options.record({ proxyId: entry.proxy.id, ownerId: undefined, reports });
    } catch (error) {
      const why = `the sample was not stored: ${errorMessage(error)}`;
      for (const target of health.targets) {
        if (target.sampled) Object.assign(target, { sampled: false, error: why });
      }
      throw error;
    }
  }

  private async targetsOf(source: ScrapeSource, proxy: ProxyRecord): Promise<Target[]> {
    const { targets } = source;
    if ("static" in targets) return targets.static;
    const actuator = await this.options.actuatorFor(proxy);
    if (!actuator.targets) {
      throw new Error(
        `the ${actuator.kind} actuator does not list its replicas' endpoints: use targets { static: [...] }`,
      );
    }
    const listed = await actuator.targets();
    return listed.map((target) => ({
      instance: target.instance,
      url:
        target.url !== undefined && targets.port === undefined
          ? target.url
          : `http://${target.address.includes(":") ? `[${target.address}]` : target.address}:${targets.port ?? target.port}${targets.path}`,
    }));
  }

  private async scrapeTarget(
    entry: Scraped,
    source: ScrapeSource,
    target: Target,
  ): Promise<{ health: ScrapeTargetHealth; metrics?: LoadMetrics }> {
    const at = this.clock();
    const startedAt = performance.now();
    const health = (fields: Pick<ScrapeTargetHealth, "ok" | "sampled" | "error">): ScrapeTargetHealth => ({
      instance: target.instance,
      url: target.url,
      scrapedAt: at,
      durationMs: Math.round(performance.now() - startedAt),
      ...fields,
    });
    let scrape: Scrape;
    try {
      scrape = { at, series: parseExposition(await fetchExposition(target.url, source.timeoutMs)) };
    } catch (error) {
      return { health: health({ ok: false, sampled: false, error: errorMessage(error) }) };
    }
    const previous = entry.previous.get(target.instance) ?? null;
    entry.previous.set(target.instance, scrape);
    const reading = readScrape(source.mapping, previous, scrape);
    const sample = scrapedSample(reading, { instanceId: target.instance, at });
    if (!sample.ok) {
      const why = previous === null ? `${sample.reason} (a first scrape: rates need two)` : sample.reason;
      return { health: health({ ok: true, sampled: false, error: why }) };
    }
    return { health: health({ ok: true, sampled: true, error: null }), metrics: sample.metrics };
  }

  /** Stops every scrape; a round in flight finishes (its fetches end within their timeouts). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = null;
    await this.refreshing;
    const rounds = [...this.scraped.values()].map((entry) => entry.round);
    for (const proxyId of [...this.scraped.keys()]) this.stop(proxyId);
    await Promise.all(rounds);
  }
}

/** GETs one exposition, body included, within `timeoutMs`; a non-2xx answer or an oversized body fails. */
async function fetchExposition(url: string, timeoutMs: number): Promise<string> {
  const signal = AbortSignal.timeout(timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, {
      signal,
      headers: { accept: "text/plain;version=0.0.4;q=1,*/*;q=0.1" },
      redirect: "error",
    });
  } catch (error) {
    throw signal.aborted ? new Error(`no answer within ${timeoutMs} ms`) : error;
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => {});
    throw new Error(`answered HTTP ${response.status}`);
  }
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (declared > MAX_EXPOSITION_BYTES) {
    await response.body?.cancel().catch(() => {});
    throw new Error(`the exposition is ${declared} bytes, over ${MAX_EXPOSITION_BYTES}`);
  }
  try {
    return await readBounded(response);
  } catch (error) {
    throw signal.aborted ? new Error(`the body did not arrive within ${timeoutMs} ms`) : error;
  }
}

/** The body as text, refused past MAX_EXPOSITION_BYTES (a target streaming without end must not fill memory). */
async function readBounded(response: Response): Promise<string> {
  if (!response.body) return "";
  const decoder = new TextDecoder();
  const reader = response.body.getReader();
  let text = "";
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > MAX_EXPOSITION_BYTES) {
      await reader.cancel().catch(() => {});
      throw new Error(`the exposition is over ${MAX_EXPOSITION_BYTES} bytes`);
    }
    text += decoder.decode(value, { stream: true });
  }
  return text + decoder.decode();
}

/**
 * The server's scraper, wired as startServer wires it: the control loop's shards, actuators and push hook, and
 * the push path's recorder (createSampleRecorder) over `db`.
 */
export function createScraper(args: {
  db: Db;
  logger: Logger;
  control: ControlLoop;
  telemetry: Telemetry;
  refreshIntervalMs: number;
  clock?: () => number;
}): Scraper {
  const clock = args.clock ?? Date.now;
  return new Scraper({
    db: args.db,
    logger: args.logger,
    clock,
    heldShards: () => args.control.shards.heldShards(),
    shardCount: SHARD_COUNT,
    actuatorFor: (proxy) => args.control.registry.get(proxy),
    record: createSampleRecorder({
      db: args.db,
      clock,
      telemetry: args.telemetry,
      onMetricsRecorded: args.control.onMetricsRecorded,
    }),
    refreshIntervalMs: args.refreshIntervalMs,
  });
}
