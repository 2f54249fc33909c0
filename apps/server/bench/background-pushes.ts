import { openLoop } from "./support.ts";

/**
 * Background load for the reaction benchmark, in its own process: BACKGROUND_RATE pushes/s (one sample each, in
 * the hold band) spread over the proxy ids on argv, until the parent kills it. Prints "started" once under way.
 */
const [url, bearer, ...proxyIds] = process.argv.slice(2);
const rate = Number(process.env.BACKGROUND_RATE ?? 2_000);
const body = JSON.stringify({
  instanceId: "r0",
  cpuPercent: 50,
  memoryPercent: 60,
  requestRate: 500,
  avgLatencyMs: 20,
  errorRatePercent: 2,
});
process.stdout.write("started\n");
for (;;) {
  await openLoop(url!, {
    method: "POST",
    request: (index) => ({ path: `/api/proxy/scaling/metrics/${proxyIds[index % proxyIds.length]}`, body }),
    bearer: bearer!,
    rate,
    seconds: 5,
    connections: 64,
    expectStatus: 201,
  });
}
