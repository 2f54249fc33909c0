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
  /** The demo proxy, unless PROXYSCALE_DEMO=0 (or it could not start: see the log). */
  demo: DemoInfo | null;
  /** Graceful stop: no new connections, in-flight requests finish, then the database closes. */
  close(): Promise<void>;
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
  };
  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
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
              expiresIn: "365d",
            }),
          }
        : undefined,
  });
  const retention = new RetentionScheduler({
    db: database.db,
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
    publicUrl: config.publicUrl,
    metrics,
    live,
    executor: control.executor,
    onMetricsRecorded: control.onMetricsRecorded,
    reconcileIntervalMs: config.control.reconcileIntervalMs,
    ...options.overrides,
  });
  let demo: RunningDemo | null = null;
  try {
    bound = await server.listen(config.port, config.host);
    await control.start();
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
        });
      } catch (error) {
        logger.warn({ err: (error as Error).message }, "demo skipped");
      }
    }
  } catch (error) {
    await server.close();
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
          expiresIn: "30d",
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
    demo: demo?.info ?? null,
    async close() {
      await server.close();
      await retention.close();
      await control.close();
      await demo?.close();
      await database.close();
      logger.info({}, "proxyscale server stopped");
    },
  };
}
