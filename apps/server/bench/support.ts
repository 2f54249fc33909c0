import { spawn } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { openDatabase } from "@proxyscale/db";

/** What the benchmarks share: the server in its own process, JSON posts, and an open-loop load generator. */

export const POSTGRES_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** Whether PostgreSQL takes a schema for this driver's run; says why it is skipped when it does not. */
export async function postgresReady(schema: string): Promise<boolean> {
  try {
    const probe = await openDatabase({ url: POSTGRES_URL, pgSchema: schema, poolMax: 1 });
    await probe.close();
    return true;
  } catch (error) {
    console.warn(`skipping postgres: ${(error as Error).message}`);
    return false;
  }
}

export interface ServerProcess {
  url: string;
  stop(): Promise<void>;
}

/**
 * Runs `bench/serve.ts` in a child process (so the load generator does not share its event loop) with the
 * given driver, schema and secret; `control` wires the control loop as startServer does.
 */
export async function startServerProcess(options: {
  driver: string;
  schema: string;
  secret: string;
  control?: boolean;
}): Promise<ServerProcess> {
  const serve = fileURLToPath(new URL("./serve.ts", import.meta.url));
  const tsx = fileURLToPath(new URL("../node_modules/.bin/tsx", import.meta.url));
  // BENCH_PROFILE_DIR=dir writes the server's CPU profile there (open it in Chrome's DevTools).
  const profile = process.env.BENCH_PROFILE_DIR
    ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`]
    : [];
  const child = spawn(tsx, [...profile, serve], {
    env: {
      ...process.env,
      BENCH_DRIVER: options.driver,
      BENCH_DATABASE_URL: POSTGRES_URL,
      BENCH_SCHEMA: options.schema,
      BENCH_SECRET: options.secret,
      BENCH_CONTROL: options.control ? "1" : "0",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  const { url } = JSON.parse(line.toString().split("\n")[0]!) as { url: string };
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

export async function post(
  url: string,
  bearer: string,
  body: unknown,
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/**
 * JSON requests to `baseUrl` with `bearer`, over a few keep-alive connections of plain `node:http` (cheaper per
 * request than fetch, for benchmarks that time single requests). `close` ends the connections.
 */
export function keepAliveCaller(baseUrl: string, bearer: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const call = (method: string, path: string, body: unknown) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const payload = JSON.stringify(body);
      const req = http.request(
        `${baseUrl}${path}`,
        {
          method,
          agent,
          headers: {
            authorization: `Bearer ${bearer}`,
            "content-type": "application/json",
            "content-length": Buffer.byteLength(payload),
          },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            text += chunk;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  return { call, close: () => agent.destroy() };
}

export interface OpenLoopResult {
  p50: number;
  p99: number;
  /** Answers per second over the run, from the first scheduled send to the last answer. */
  throughput: number;
  answered: number;
}

/**
 * Open-loop load: `rate` requests per second for `seconds` on up to `connections` keep-alive connections, each
 * request timed from its scheduled send time (so a slow server cannot hide queueing by slowing the sender
 * down). Any answer other than `expectStatus` fails the run.
 */
export async function openLoop(
  url: string,
  options: {
    method: string;
    /** Request `index`'s path and, for a POST, its JSON body. */
    request: (index: number) => { path: string; body?: string };
    bearer?: string;
    rate: number;
    seconds: number;
    connections: number;
    expectStatus?: number;
  },
): Promise<OpenLoopResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections });
  const total = Math.round(options.rate * options.seconds);
  const latencies: number[] = [];
  const failures: string[] = [];
  const expectStatus = options.expectStatus ?? 200;
  const started = performance.now();
  const requests: Promise<void>[] = [];
  for (let index = 0; index < total; index++) {
    const scheduled = started + (index * 1000) / options.rate;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const { path, body } = options.request(index);
    const headers: Record<string, string> = {};
    if (options.bearer) headers.authorization = `Bearer ${options.bearer}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    requests.push(
      new Promise<void>((resolve) => {
        const request = http.request(
          `${url}${path}`,
          { method: options.method, agent, headers },
          (response) => {
            response.resume();
            response.on("end", () => {
              if (response.statusCode !== expectStatus) failures.push(String(response.statusCode));
              latencies.push(performance.now() - scheduled);
              resolve();
            });
          },
        );
        request.on("error", (error) => {
          failures.push(
            `${error.message} after ${(performance.now() - scheduled).toFixed(0)} ms (request ${index})`,
          );
          resolve();
        });
        request.end(body);
      }),
    );
  }
  await Promise.all(requests);
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const percentile = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? Number.NaN;
  if (failures.length > 0) {
    throw new Error(
      `${options.request(0).path}: ${failures.length} failed requests at ${options.rate} req/s (first: ${failures[0]})`,
    );
  }
  return {
    p50: percentile(0.5),
    p99: percentile(0.99),
    throughput: latencies.length / elapsed,
    answered: latencies.length,
  };
}
