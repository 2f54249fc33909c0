import { randomBytes } from "node:crypto";
import { signToken } from "@proxyscale/api";
import { openDatabase } from "@proxyscale/db";
import { disposeDatabase } from "@proxyscale/db/testing";
import { keepAliveCaller, POSTGRES_URL, post, postgresReady, startServerProcess } from "./support.ts";

/**
 * Tenant fairness (issue 11, defect 5), per driver: one tenant's evaluate latency alone and while a free-tier
 * tenant floods (within its rate limit) batches of 5,000 instance ids never seen before, four at a time, and
 * evaluates its own proxy four at a time. Prints both p50s and their ratio, the issue's measure. The server runs
 * in a child process, so the load generator does not share its event loop.
 */

const SECRET = randomBytes(32).toString("hex");
const SAMPLES = Number(process.env.BENCH_FAIRNESS_SAMPLES ?? 60);
const BATCH = 5_000;
const MID = { cpuPercent: 50, memoryPercent: 60, requestRate: 500, avgLatencyMs: 20, errorRatePercent: 2 };

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
};

async function benchDriver(driver: "postgres" | "pglite") {
  const schema = `bench_${randomBytes(5).toString("hex")}`;
  if (driver === "postgres" && !(await postgresReady(schema))) return null;
  const server = await startServerProcess({ driver, schema, secret: SECRET });
  try {
    const sign = (sub: string) =>
      signToken({ sub, role: "operator", tier: "free", secret: SECRET, expiresIn: "1h" });
    const quietToken = await sign("quiet");
    const floodToken = await sign("flooder");
    const register = async (bearer: string, name: string) => {
      const response = await post(`${server.url}/api/proxies`, bearer, { name });
      if (response.status !== 201) throw new Error(`register answered ${response.status}`);
      return (response.body as { id: string }).id;
    };
    const quietProxy = await register(quietToken, "quiet");
    const floodProxy = await register(floodToken, "flooded");
    const quiet = keepAliveCaller(server.url, quietToken);
    const flood = keepAliveCaller(server.url, floodToken);
    await quiet.call("POST", `/api/proxy/scaling/metrics/${quietProxy}/batch`, {
      samples: [0, 1, 2].map((i) => ({ ...MID, instanceId: `q-${i}` })),
    });
    const evaluations = async (count: number) => {
      const times: number[] = [];
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        const response = await quiet.call("POST", `/api/proxy/scaling/evaluate/${quietProxy}`, {});
        if (response.status !== 200) throw new Error(`evaluate answered ${response.status}`);
        times.push(performance.now() - started);
      }
      return times;
    };
    await evaluations(10);
    const alone = await evaluations(SAMPLES);

    let flooding = true;
    let batches = 0;
    const statuses = new Map<number, number>();
    const count = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);
    const pushLoop = async () => {
      while (flooding) {
        batches += 1;
        const samples = Array.from({ length: BATCH }, (_, i) => ({
          ...MID,
          instanceId: `churn-${batches}-${i}`,
        }));
        count(
          (await flood.call("POST", `/api/proxy/scaling/metrics/${floodProxy}/batch`, { samples })).status,
        );
      }
    };
    const evaluateLoop = async () => {
      while (flooding)
        count((await flood.call("POST", `/api/proxy/scaling/evaluate/${floodProxy}`, {})).status);
    };
    const loops = [...Array.from({ length: 4 }, pushLoop), ...Array.from({ length: 4 }, evaluateLoop)];
    while (batches < 4) await new Promise((resolve) => setImmediate(resolve));
    const flooded = await evaluations(SAMPLES);
    flooding = false;
    await Promise.all(loops);
    quiet.close();
    flood.close();
    return {
      driver,
      alone: { p50: percentile(alone, 0.5), p99: percentile(alone, 0.99) },
      flooded: { p50: percentile(flooded, 0.5), p99: percentile(flooded, 0.99) },
      flood: `${batches} batches; answers ${[...statuses].map(([status, n]) => `${status}×${n}`).join(", ")}`,
    };
  } finally {
    await server.stop();
    if (driver === "postgres") {
      await disposeDatabase(await openDatabase({ url: POSTGRES_URL, pgSchema: schema, poolMax: 1 }));
    }
  }
}

/** BENCH_DRIVERS=postgres (or pglite) runs one driver; both by default. */
const DRIVERS = (process.env.BENCH_DRIVERS ?? "postgres,pglite").split(",");
const results = [];
for (const driver of ["postgres", "pglite"] as const) {
  if (DRIVERS.includes(driver)) {
    const result = await benchDriver(driver);
    if (result) results.push(result);
  }
}
console.log(
  `\n### Tenant fairness (${SAMPLES} evaluations each; flood: 4 × ${BATCH}-id batches + 4 evaluates in a loop)\n`,
);
console.log(
  "| driver | evaluate p50 alone (ms) | p50 under flood (ms) | ratio | p99 alone | p99 under flood | flood |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
for (const r of results) {
  console.log(
    `| ${r.driver} | ${r.alone.p50.toFixed(1)} | ${r.flooded.p50.toFixed(1)} | ${(r.flooded.p50 / r.alone.p50).toFixed(2)}× | ${r.alone.p99.toFixed(1)} | ${r.flooded.p99.toFixed(1)} | ${r.flood} |`,
  );
}
