import { openDatabase } from "@proxyscale/db";
import { ControlLoop } from "../src/control/loop.ts";
import { createLogger } from "../src/logger.ts";
import { createServerMetrics } from "../src/metrics.ts";
import { createServer } from "../src/server.ts";

/**
 * The server under benchmark, in its own process so the load generator does not share its event loop.
 * BENCH_CONTROL=1 also runs the control loop, wired as startServer wires it (its executor, every push heard).
 * Prints one JSON line `{ "url": ... }` when it listens; stops on SIGTERM.
 */
const database =
  process.env.BENCH_DRIVER === "postgres"
    ? await openDatabase({
        url: process.env.BENCH_DATABASE_URL,
        pgSchema: process.env.BENCH_SCHEMA,
        poolMax: 10,
      })
    : await openDatabase({ dataDir: "memory://" });
const logger = createLogger("warn");
const metrics = createServerMetrics({ defaultMetrics: false });
const control =
  process.env.BENCH_CONTROL === "1"
    ? new ControlLoop({
        database,
        logger,
        telemetry: metrics.telemetry,
        metricsRegistry: metrics.registry,
        // BENCH_WORKERS compares worker counts; unset, the loop's default.
        ...(process.env.BENCH_WORKERS ? { workers: Number(process.env.BENCH_WORKERS) } : {}),
      })
    : null;
const server = createServer({
  database,
  auth: { jwtSecret: process.env.BENCH_SECRET },
  logger,
  adminDistDir: null,
  metrics,
  ...(control ? { executor: control.executor, onMetricsRecorded: control.onMetricsRecorded } : {}),
});
const { url } = await server.listen(0, "127.0.0.1");
await control?.start();
process.stdout.write(`${JSON.stringify({ url })}\n`);
process.on("SIGTERM", () => {
  server
    .close()
    .then(() => control?.close())
    .then(() => database.close())
    .then(() => process.exit(0));
});
