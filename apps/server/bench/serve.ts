import { openDatabase } from "@proxyscale/db";
import { createLogger } from "../src/logger.ts";
import { createServer } from "../src/server.ts";

/**
 * The server under benchmark, in its own process so the load generator does not share its event loop.
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
const server = createServer({
  database,
  auth: { jwtSecret: process.env.BENCH_SECRET },
  logger: createLogger("warn"),
  adminDistDir: null,
});
const { url } = await server.listen(0, "127.0.0.1");
process.stdout.write(`${JSON.stringify({ url })}\n`);
process.on("SIGTERM", () => {
  server
    .close()
    .then(() => database.close())
    .then(() => process.exit(0));
});
