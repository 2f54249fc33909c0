import { combineTelemetry, createLiveFeed, signToken } from "@proxyscale/api";
import { type Database, openDatabase } from "@proxyscale/db";
import type { DestinationStream } from "pino";
import type { ServerConfig } from "./config.ts";
import { ControlLoop } from "./control/loop.ts";
import { RetentionScheduler } from "./control/retention.ts";
import { type DemoInfo, type RunningDemo, startDemo } from "./demo/register.ts";
import { createLogger } from "./logger.ts";
import { createServerMetrics } from "./metrics.ts";
import { ensureSecretFile } from "./secret.ts";
import { createServer, type ProxyScaleServer, type ServerDeps } from "./server.ts";
import { createScraper, type Scraper } from "./sources/scrape.ts";

/** How long the admin token printed on first start is valid (at most PROXYSCALE_MAX_TOKEN_LIFETIME_SECONDS). */
export const FIRST_ADMIN_TOKEN_SECONDS = 30 * 86_400;

export interface RunningServer {
  url: string;
  port: number;
  server: ProxyScaleServer;
  database: Database;
  /** Set when the secret lives in the data directory (embedded mode). */
  secretFile: { path: string; created: boolean } | null;
  /** An admin token, minted only when the secret file was created by this start. */
  firstAdminToken: string | null;
  /** Evaluates and scales proxies (event-driven on metrics pushes, and every reconcile interval). */
  control: ControlLoop;
  /** Rollups and pruning every PROXYSCALE_RETENTION_INTERVAL_SECONDS (one server at a time). */
  retention: RetentionScheduler;
  /** Scrapes (or queries Prometheus for) the proxies of this server's shards whose metrics source is `scrape` (or `prometheus`). */
  scraper: Scraper;
  /** The demo proxy, unless PROXYSCALE_DEMO=0 (or it could not start: see the log). */
  demo: DemoInfo | null;
  /**
   * Graceful stop within PROXYSCALE_SHUTDOWN_TIMEOUT_SECONDS: no new connections, in-flight requests finish,
   * retention and the control loop stop, the demo stops, the database closes. What is still running at the
   * deadline is abandoned (logged, and listed in the result); the database pools are then cut.
   */
  close(): Promise<StopResult>;
}

export interface StopResult {
  /** What did not finish within the shutdown deadline (empty: a clean stop). */
  abandoned: string[];
}

export interface StartOptions {
  logDestination?: DestinationStream;
  overrides?: Partial<Omit<ServerDeps, "database" | "auth" | "logger">>;
}

/** Opens the database (PostgreSQL when DATABASE_URL is set, else PGlite in the data dir) and listens. */
export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger = createLogger(config.logLevel, options.logDestination);
  const secretFile = config.jwtSecret || config.jwksUrl ? null : ensureSecretFile(config.dataDir);
  const auth = {
    jwtSecret: config.jwtSecret ?? secretFile?.secret,
    jwksUrl: config.jwksUrl,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    maxTokenLifetimeSeconds: config.maxTokenLifetimeSeconds,
  };
  // Tokens this server mints live no longer than it accepts.
  const lifetime = (seconds: number) => Math.min(seconds, config.maxTokenLifetimeSeconds ?? seconds);
  const database = await openDatabase({
    // The config is the one source: openDatabase alone would also read DATABASE_URL from the process's env.
    driver: config.databaseUrl ? "postgres" : "pglite",
    url: config.databaseUrl,
    dataDir: config.dataDir,
    queryTimeoutMs: config.queryTimeoutMs,
  });
  const metrics = options.overrides?.metrics ?? createServerMetrics();
  // The control loop's decisions and events reach live.onChange too: the server serves this feed.
  const live = options.overrides?.live ?? createLiveFeed({ db: database.db, database, logger });
  let bound: { url: string; port: number } | undefined;
  const jwtSecret = auth.jwtSecret;
  const control = new ControlLoop({
    database,
    logger,
    reconcileIntervalMs: config.control.reconcileIntervalMs,
    leaseTtlMs: config.control.leaseTtlMs,
    acceptedTimeoutMs: config.control.acceptedTimeoutMs,
    telemetry: combineTelemetry(metrics.telemetry, live.telemetry),
    metricsRegistry: metrics.registry,
    // Local workers push their metrics here, with a token of the proxy's owner (needs the HS256 secret).
    metricsReporting: async (proxy) =>
      bound && jwtSecret
        ? {
            url: bound.url,
            token: await signToken({
              sub: proxy.ownerId,
              role: "operator",
              tier: "enterprise",
              secret: jwtSecret,
              expiresIn: lifetime(365 * 86_400),
            }),
          }
        : undefined,
  });
  const scraper = createScraper({
    db: database.db,
    logger,
    control,
    telemetry: combineTelemetry(metrics.telemetry, live.telemetry),
    // The list of scraped proxies is read again as often as the loop reconciles.
    refreshIntervalMs: config.control.reconcileIntervalMs,
  });
  const retention = new RetentionScheduler({
    db: database.db,
    // Rollups and prunes may run past the query deadline: they have the maintenance pool's own.
    maintenanceDb: database.maintenance,
    logger,
    holder: control.holder,
    metricsRegistry: metrics.registry,
    ...config.control.retention,
  });
  const server = createServer({
    database,
    auth,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    requestTimeoutMs: config.requestTimeoutMs,
    publicUrl: config.publicUrl,
    metricsAccess: config.metrics,
    metrics,
    live,
    executor: control.executor,
    onMetricsRecorded: control.onMetricsRecorded,
    reconcileIntervalMs: config.control.reconcileIntervalMs,
    maxClockSkewSeconds: config.maxClockSkewSeconds,
    // Requests get half of the shutdown deadline; the rest is for scales, the loop and the database.
    shutdownGraceMs: Math.min(10_000, config.shutdownTimeoutMs / 2),
    sourceHealth: (proxyId) => scraper.health(proxyId),
    ...options.overrides,
  });
  let stopping: Promise<StopResult> | undefined;
  let requestsInFlight = 0;
  server.httpServer.on("request", (_req, res) => {
    requestsInFlight += 1;
    res.once("close", () => {
      requestsInFlight -= 1;
    });
  });
  let demo: RunningDemo | null = null;
  try {
    bound = await server.listen(config.port, config.host);
    await control.start();
    scraper.start();
    retention.start();
    if (config.control.demo.enabled) {
      try {
        demo = await startDemo({
          database,
          control,
          logger,
          serverUrl: bound.url,
          port: config.control.demo.port ?? (bound.port === 0 || config.port === 0 ? 0 : bound.port + 1),
          dataDir: config.dataDir,
          proxy: config.demoProxy,
        });
      } catch (error) {
        logger.warn({ err: (error as Error).message }, "demo skipped");
      }
    }
  } catch (error) {
    await server.close();
    await scraper.close();
    await retention.close();
    await control.close();
    await database.close();
    throw error;
  }
  logger.info(
    { url: bound.url, driver: database.driver, schema: database.schema },
    "proxyscale server listening",
  );
  const firstAdminToken =
    secretFile?.created && auth.jwtSecret
      ? await signToken({
          sub: "admin",
          role: "admin",
          tier: "enterprise",
          secret: auth.jwtSecret,
          expiresIn: lifetime(FIRST_ADMIN_TOKEN_SECONDS),
        })
      : null;
  return {
    url: bound.url,
    port: bound.port,
    server,
    database,
    secretFile: secretFile ? { path: secretFile.path, created: secretFile.created } : null,
    firstAdminToken,
    control,
    retention,
    scraper,
    demo: demo?.info ?? null,
    async close() {
      if (!stopping)
        logger.info({ shutdownTimeoutMs: config.shutdownTimeoutMs }, "proxyscale server stopping");
      const runningDemo = demo;
      stopping ??= stopWithin(
        config.shutdownTimeoutMs,
        [
          [
            {
              name: "the HTTP server's close",
              detail: () =>
                `the HTTP server's close (${requestsInFlight} in-flight request${requestsInFlight === 1 ? "" : "s"})`,
              stop: () => server.close(),
            },
            // Before the loop: a round in flight uses its actuators. Its fetches end within their timeouts.
            { name: "the scraper's close", stop: () => scraper.close() },
          ],
          // Independent of each other: each releases its own lease rows.
          [
            { name: "retention's close", stop: () => retention.close() },
            {
              name: "the control loop's close",
              detail: () =>
                control.executor.hasRunningIn(() => true)
                  ? "the control loop's close (scales still running)"
                  : "the control loop's close",
              stop: () => control.close(),
            },
          ],
          runningDemo ? [{ name: "the demo's close", stop: () => runningDemo.close() }] : [],
          [
            {
              name: "the database pool close",
              stop: (remainingMs) => database.close({ timeoutMs: remainingMs }),
            },
          ],
        ],
        (step, error) =>
          logger.warn({ step, err: (error as Error).message }, "proxyscale server stop: a step failed"),
      ).then(async ({ abandoned, ms }) => {
        if (abandoned.length === 0) {
          logger.info({ ms: Math.round(ms) }, "proxyscale server stopped");
        } else {
          logger.error(
            { abandoned, shutdownTimeoutMs: config.shutdownTimeoutMs },
            `proxyscale server stopped at its shutdown deadline, abandoning: ${abandoned.join(", ")}`,
          );
          // Whatever still waits on the database fails now instead of holding the process.
          await database.close({ timeoutMs: 0 }).catch(() => {});
        }
        return { abandoned };
      });
      return stopping;
    },
  };
}

interface StopStep {
  name: string;
  /** How the step is named when abandoned, with what it still had running. */
  detail?: () => string;
  stop: (remainingMs: number) => Promise<unknown>;
}

/**
 * Runs the stages one after the other within `timeoutMs` in all, the steps of a stage together. At the deadline the
 * steps still running and every later stage are abandoned (not awaited any further): the result names them. A step
 * that fails is reported to `onError` and counts as done.
 */
async function stopWithin(
  timeoutMs: number,
  stages: StopStep[][],
  onError: (step: string, error: unknown) => void,
): Promise<{ abandoned: string[]; ms: number }> {
  const startedAt = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"deadline">((resolve) => {
    timer = setTimeout(() => resolve("deadline"), timeoutMs);
  });
  const named = (step: StopStep) => step.detail?.() ?? step.name;
  try {
    for (const [index, stage] of stages.entries()) {
      const remainingMs = Math.max(0, timeoutMs - (performance.now() - startedAt));
      const running = new Set(stage);
      const done = Promise.all(
        stage.map((step) =>
          step.stop(remainingMs).then(
            () => running.delete(step),
            (error: unknown) => {
              onError(step.name, error);
              running.delete(step);
            },
          ),
        ),
      );
      if ((await Promise.race([done, deadline])) === "deadline") {
        return {
          abandoned: [
            ...[...running].map(named),
            ...stages
              .slice(index + 1)
              .flat()
              .map(named),
          ],
          ms: performance.now() - startedAt,
        };
      }
    }
    return { abandoned: [], ms: performance.now() - startedAt };
  } finally {
    clearTimeout(timer);
  }
}
