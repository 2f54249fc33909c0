/**
 * Runs the demo upstream on its own: `tsx apps/server/src/actuators/local/upstream-main.ts --port 9000 --latency 20`.
 */
import { parseArgs } from "node:util";
import { startHelloUpstream } from "./upstream.ts";

function readArgs() {
  try {
    return parseArgs({
      options: {
        host: { type: "string", default: "127.0.0.1" },
        port: { type: "string", default: "0" },
        latency: { type: "string", default: "10" },
        jitter: { type: "string", default: "0" },
      },
    }).values;
  } catch (error) {
    process.stderr.write(
      `${(error as Error).message}\nusage: upstream-main.ts [--host H] [--port N] [--latency MS] [--jitter MS]\n`,
    );
    process.exit(1);
  }
}
const values = readArgs();

function nonNegative(name: string, raw: string | undefined): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    process.stderr.write(`--${name} must be a number ≥ 0, got ${JSON.stringify(raw)}\n`);
    process.exit(1);
  }
  return value;
}

const upstream = await startHelloUpstream({
  host: values.host,
  port: nonNegative("port", values.port),
  latencyMs: nonNegative("latency", values.latency),
  jitterMs: nonNegative("jitter", values.jitter),
});
process.stdout.write(`demo upstream listening on ${upstream.url}\n`);
const shutdown = () => void upstream.close().then(() => process.exit(0));
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
