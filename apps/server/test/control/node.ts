import { combineTelemetry, createLiveFeed, signToken } from "@proxyscale/api";
import type { Database } from "@proxyscale/db";
import { ControlLoop, type ControlLoopOptions } from "../../src/control/loop.ts";
import { createLogger } from "../../src/logger.ts";
import { createServerMetrics } from "../../src/metrics.ts";
import { createServer, type ProxyScaleServer } from "../../src/server.ts";
import { createScraper } from "../../src/sources/scrape.ts";

export interface ControlNode {
  url: string;
  control: ControlLoop;
  server: ProxyScaleServer;
  close(): Promise<void>;
}

/** A server as start.ts wires it (the control loop is its executor and hears every push), on an ephemeral port. */
export function startControlNode(
  database: Database,
  secret: string,
  options: Partial<Omit<ControlLoopOptions, "database">> = {},
): Promise<ControlNode> {
  return startNode(database, secret, options, undefined);
}

/** The same with the scrape/prometheus scheduler, wired as start.ts wires it (sources re-read every refreshIntervalMs). */
export function startScrapingNode(
  database: Database,
  secret: string,
  scrape: { refreshIntervalMs: number },
): Promise<ControlNode> {
  return startNode(database, secret, {}, scrape);
}

async function startNode(
  database: Database,
  secret: string,
  options: Partial<Omit<ControlLoopOptions, "database">>,
  scrape: { refreshIntervalMs: number } | undefined,
): Promise<ControlNode> {
  const logger = createLogger(process.env.CONTROL_TEST_LOG === "1" ? "debug" : "silent");
  const metrics = createServerMetrics({ defaultMetrics: false });
  const live = createLiveFeed({ db: database.db, database, logger });
  let url = "";
  const control = new ControlLoop({
    database,
    logger,
    telemetry: combineTelemetry(metrics.telemetry, live.telemetry),
    metricsRegistry: metrics.registry,
    metricsReporting: async (proxy) => ({
      url,
      token: await signToken({
        sub: proxy.ownerId,
        role: "operator",
        tier: "enterprise",
        secret,
        expiresIn: "1h",
      }),
    }),
    // Without timers nothing renews the shard leases: a test that ran past the default 15 s lease (a loaded
    // machine) found its pushes no longer evaluated by the server that had stopped holding their shards.
    ...(options.timers === false ? { leaseTtlMs: 3_600_000 } : {}),
    ...options,
  });
  const scraper = scrape
    ? createScraper({
        db: database.db,
        logger,
        control,
        telemetry: combineTelemetry(metrics.telemetry, live.telemetry),
        refreshIntervalMs: scrape.refreshIntervalMs,
      })
    : undefined;
  const server = createServer({
    database,
    auth: { jwtSecret: secret },
    logger,
    adminDistDir: null,
    metrics,
    live,
    executor: control.executor,
    onMetricsRecorded: control.onMetricsRecorded,
    ...(scraper ? { sourceHealth: (id: string) => scraper.health(id) } : {}),
    // The API evaluates on the loop's clock and interval, as startServer wires them.
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.reconcileIntervalMs ? { reconcileIntervalMs: options.reconcileIntervalMs } : {}),
  });
  url = (await server.listen(0, "127.0.0.1")).url;
  await control.start();
  scraper?.start();
  return {
    url,
    control,
    server,
    async close() {
      await scraper?.close();
      await server.close();
      await control.close();
    },
  };
}
