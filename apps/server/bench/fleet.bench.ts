import { randomBytes } from "node:crypto";
import { signToken } from "@proxyscale/api";
import { openDatabase } from "@proxyscale/db";
import { disposeDatabase } from "@proxyscale/db/testing";
import { openLoop, POSTGRES_URL, post, postgresReady, startServerProcess } from "./support.ts";

/**
 * The push path of a fleet, per driver: FLEET_PROXIES proxies (default policy, mode auto, the `none` actuator),
 * each push one sample through POST /api/proxy/scaling/metrics/{id} — what MetricsReporter sends — with the
 * control loop running and evaluating every proxy that pushed (coalescing within a proxy). Open-loop load at
 * fixed rates, each request timed from its scheduled send, against /healthz at the same rate and connections
 * in the same run. Goals (issue 9): PostgreSQL ≥ 3,000 pushes/s sustained with p99 ≤ 50 ms at 2,400/s; PGlite
 * ≥ 1,000/s with p99 ≤ 50 ms at 800/s.
 */

const PROXIES = Number(process.env.FLEET_PROXIES ?? 2_000);
const SECONDS = Number(process.env.BENCH_DURATION_SECONDS ?? 10);
const CONNECTIONS = 64;
const SECRET = randomBytes(32).toString("hex");
const RATES: Record<string, number[]> = {
  postgres: (process.env.FLEET_RATES_POSTGRES ?? "2400,3000").split(",").map(Number),
  pglite: (process.env.FLEET_RATES_PGLITE ?? "800,1000").split(",").map(Number),
};
const GOALS: Record<string, { p99At: number; sustained: number }> = {
  postgres: { p99At: 2_400, sustained: 3_000 },
  pglite: { p99At: 800, sustained: 1_000 },
};
const P99_GOAL_MS = 50;

function sampleBody(index: number): string {
  return JSON.stringify({
    instanceId: "r0",
    cpuPercent: 40 + (index % 20),
    memoryPercent: 50,
    requestRate: 500,
    avgLatencyMs: 20,
    errorRatePercent: 1,
  });
}

/** The control loop's push-triggered evaluations so far, read from the server's /metrics. */
async function pushEvaluations(url: string, bearer: string): Promise<number> {
  const text = await (
    await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${bearer}` } })
  ).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("proxyscale_control_evaluations_total{") && line.includes('trigger="push"')) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}

async function benchDriver(driver: "postgres" | "pglite"): Promise<string[]> {
  const schema = `bench_${randomBytes(5).toString("hex")}`;
  if (driver === "postgres" && !(await postgresReady(schema))) return [];
  const server = await startServerProcess({ driver, schema, secret: SECRET, control: true });
  const rows: string[] = [];
  try {
    const admin = await signToken({ sub: "fleet", role: "admin", tier: "enterprise", secret: SECRET });
    const proxies: string[] = [];
    for (let start = 0; start < PROXIES; start += 20) {
      const created = await Promise.all(
        Array.from({ length: Math.min(20, PROXIES - start) }, (_, offset) =>
          post(`${server.url}/api/proxies`, admin, { name: `fleet-${start + offset}` }),
        ),
      );
      for (const response of created) {
        if (response.status !== 201) throw new Error(`register answered ${response.status}`);
        proxies.push((response.body as { id: string }).id);
      }
    }
    const push = (index: number) => ({
      path: `/api/proxy/scaling/metrics/${proxies[index % proxies.length]}`,
      body: sampleBody(index),
    });
    // Every proxy has a sample and a decision before the measured runs.
    await openLoop(server.url, {
      method: "POST",
      request: push,
      bearer: admin,
      rate: 500,
      seconds: PROXIES / 500,
      connections: CONNECTIONS,
      expectStatus: 201,
    });
    const goal = GOALS[driver]!;
    for (const rate of RATES[driver]!) {
      const load = { rate, seconds: SECONDS, connections: CONNECTIONS };
      const health = await openLoop(server.url, {
        method: "GET",
        request: () => ({ path: "/healthz" }),
        ...load,
      });
      const before = await pushEvaluations(server.url, admin);
      const pushes = await openLoop(server.url, {
        method: "POST",
        request: push,
        bearer: admin,
        expectStatus: 201,
        ...load,
      });
      const evaluations = (await pushEvaluations(server.url, admin)) - before;
      const verdicts: string[] = [];
      if (rate === goal.p99At) verdicts.push(pushes.p99 <= P99_GOAL_MS ? "p99 met" : "p99 not met");
      if (rate === goal.sustained)
        verdicts.push(pushes.throughput >= rate * 0.98 ? "sustained: met" : "sustained: not met");
      rows.push(
        `| ${driver} | ${rate} | ${pushes.throughput.toFixed(0)} | ${pushes.p50.toFixed(1)} | ${pushes.p99.toFixed(1)} | ` +
          `${health.throughput.toFixed(0)} | ${health.p50.toFixed(1)} | ${health.p99.toFixed(1)} | ` +
          `${(pushes.throughput / health.throughput).toFixed(2)} | ${(pushes.p99 / Math.max(health.p99, 0.1)).toFixed(1)}× | ` +
          `${(evaluations / pushes.answered).toFixed(2)} | ${verdicts.join(", ") || "—"} |`,
      );
    }
  } finally {
    await server.stop();
    if (driver === "postgres") {
      await disposeDatabase(await openDatabase({ url: POSTGRES_URL, pgSchema: schema, poolMax: 1 }));
    }
  }
  return rows;
}

/** BENCH_DRIVERS=postgres (or pglite) runs one driver; both by default. */
const DRIVERS = (process.env.BENCH_DRIVERS ?? "postgres,pglite").split(",");
const rows: string[] = [];
for (const driver of ["postgres", "pglite"] as const)
  if (DRIVERS.includes(driver)) rows.push(...(await benchDriver(driver)));
console.log(
  `\n### Fleet push path (${PROXIES} proxies, one sample per push, control loop on, ${SECONDS} s per rate, ${CONNECTIONS} connections)\n`,
);
console.log(
  "| driver | offered pushes/s | answered/s | p50 ms | p99 ms | /healthz answered/s | /healthz p50 | /healthz p99 | rate ratio | p99 ratio | evaluations per push | goal |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
for (const row of rows) console.log(row);
